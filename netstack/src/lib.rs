//! moat-netstack: the sandbox's userspace TCP/IP stack (smoltcp), with Linux socket semantics.
//! May touch: only the packet socket fd it is handed by the sentry.
//! Never: opens host sockets of its own or reaches the host network stack for the app.
//!
//! The stack itself lands with the netstack issue; the crate exists so the layout of DESIGN.md
//! holds and dependents can name it.
