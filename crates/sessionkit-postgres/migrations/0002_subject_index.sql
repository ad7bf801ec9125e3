-- Every record of a subject, live or a tombstone: what
-- sk_drop_subject_if_empty asks ("does the subject still have any
-- record?") for every purged subject session. Without it that question was
-- a sequential scan of `sessions` per purged row (a 1M-row purge timed out).
CREATE INDEX sessions_of_subject ON sessions (tenant, subject)
  WHERE subject IS NOT NULL;
