//! Every CTAP 2.1 command as a type tied to its response type.
