//! accountservice end to end: the real service on an ephemeral port, the real broker, a real
//! store in a temp dir.

mod disk_full;
mod go_p9;
mod helpers;
mod outage;
mod refresh;
mod shutdown;
mod sigkill;
mod vip;
