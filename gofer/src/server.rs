//! The gofer's request loop. (Filled in with the gofer server.)
