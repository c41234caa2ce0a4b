//! vipservice end to end: processes of the built binary against the real broker and a real
//! offers database (a SQLite file they share, or a PostgreSQL database), each test with its
//! own uniquely named queue and its own database, deleted at the end.

mod database;
mod disk_full;
mod go_p9;
mod helpers;
mod offers;
mod replicas;
mod shutdown;
