//! vipservice end to end: processes of the built binary against the real broker, each with its
//! own store in a temp dir and its own uniquely named queue, deleted at the end.

mod helpers;
mod offers;
mod replicas;
mod shutdown;
