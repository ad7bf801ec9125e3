//! The conformance suite every sessionkit store must pass (work in progress).
