//! syscall-tests: placeholder
