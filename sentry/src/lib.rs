//! moat-sentry: placeholder
