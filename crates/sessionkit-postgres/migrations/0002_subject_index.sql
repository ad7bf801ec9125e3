-- Every record of a subject, live or a tombstone: what
-- sk_drop_subject_if_empty asks ("does the subject still have any
-- record?") for every purged subject session. Without it that question was
-- a sequential scan of `sessions` per purged row (a 1M-row purge timed out).
CREATE INDEX sessions_of_subject ON sessions (tenant, subject)
  WHERE subject IS NOT NULL;

-- sk_purge calls this with a record's own columns, so the call's input
-- collation is the subject column's "C", which plpgsql then gives to
-- *both* parameters: `tenant = p_tenant` compared a default-collation
-- column with a "C" parameter and could use no index (a sequential scan of
-- `subjects` per purged row). Every comparison now names its collation.
CREATE OR REPLACE FUNCTION sk_drop_subject_if_empty(p_tenant text, p_subject text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM subjects sub
   WHERE sub.tenant = p_tenant COLLATE "default" AND sub.subject = p_subject COLLATE "C"
     AND sub.active = 0
     AND NOT EXISTS (SELECT 1 FROM sessions x
                      WHERE x.tenant = p_tenant COLLATE "default"
                        AND x.subject = p_subject COLLATE "C");
  IF FOUND THEN
    DELETE FROM subject_bumps b
     WHERE b.tenant = p_tenant COLLATE "default" AND b.subject = p_subject COLLATE "C";
  END IF;
END
$$;
