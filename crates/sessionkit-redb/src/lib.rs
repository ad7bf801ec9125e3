//! Embedded durable session store (work in progress).
