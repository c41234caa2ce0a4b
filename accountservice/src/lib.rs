//! accountservice: accounts over HTTP, and VIP notifications that are never lost.
//!
//! This library holds the service's domain and storage; the binary wires it to HTTP and the
//! message broker.
//!
//! - [`account`]: the account model and the rule for a well-formed account id.
//! - [`store`]: the embedded redb database: the seeded accounts ([`store::AccountStore`]) and
//!   the durable outbox of VIP notifications not yet published ([`store::Outbox`]).
//! - [`quotes`]: the quotes-service client; it never fails a request and, through
//!   [`breaker`], stops calling a quotes service that keeps failing.

pub mod account;
pub mod breaker;
pub mod quotes;
pub mod store;
