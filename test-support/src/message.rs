//! Messages as tests see them: plain Rust values, so that a service's tests do not depend on
//! the AMQP client this crate uses.

use std::collections::BTreeMap;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString};

/// A message taken from a queue by [`Broker::drain`](crate::Broker::drain) or
/// [`Broker::consume`](crate::Broker::consume) (already acked).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub body: Vec<u8>,
    pub properties: Properties,
    /// The exchange it was published to (`""` for the default exchange).
    pub exchange: String,
    pub routing_key: String,
    /// The broker had delivered it before, to a consumer that did not ack it.
    pub redelivered: bool,
}

impl Message {
    /// The body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The AMQP basic properties of a [`Message`] (those the publisher did not set are `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties {
    pub message_id: Option<String>,
    /// AMQP's `type`.
    pub kind: Option<String>,
    pub app_id: Option<String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub correlation_id: Option<String>,
    pub reply_to: Option<String>,
    pub expiration: Option<String>,
    pub user_id: Option<String>,
    /// 2 is persistent, 1 transient.
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    /// Seconds since the Unix epoch.
    pub timestamp: Option<u64>,
    pub headers: Headers,
}

/// Message headers (or any AMQP field table) by name.
pub type Headers = BTreeMap<String, Value>;

/// An AMQP field value. Every integer type is an `Int`, every string a `Text` (a long string
/// that is not UTF-8 is `Bytes`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Decimal {
        scale: u8,
        value: u32,
    },
    Text(String),
    Bytes(Vec<u8>),
    /// Seconds since the Unix epoch.
    Timestamp(u64),
    List(Vec<Value>),
    Table(Headers),
    Void,
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(int) => Some(*int),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Self::List(list) => Some(list),
            _ => None,
        }
    }

    pub fn as_table(&self) -> Option<&Headers> {
        match self {
            Self::Table(table) => Some(table),
            _ => None,
        }
    }
}

impl From<&AMQPValue> for Value {
    fn from(value: &AMQPValue) -> Self {
        match value {
            AMQPValue::Boolean(b) => Self::Bool(*b),
            AMQPValue::ShortShortInt(i) => Self::Int(i64::from(*i)),
            AMQPValue::ShortShortUInt(i) => Self::Int(i64::from(*i)),
            AMQPValue::ShortInt(i) => Self::Int(i64::from(*i)),
            AMQPValue::ShortUInt(i) => Self::Int(i64::from(*i)),
            AMQPValue::LongInt(i) => Self::Int(i64::from(*i)),
            AMQPValue::LongUInt(i) => Self::Int(i64::from(*i)),
            AMQPValue::LongLongInt(i) => Self::Int(*i),
            AMQPValue::Float(f) => Self::Float(f64::from(*f)),
            AMQPValue::Double(f) => Self::Float(*f),
            AMQPValue::DecimalValue(d) => Self::Decimal {
                scale: d.scale,
                value: d.value,
            },
            AMQPValue::ShortString(s) => Self::Text(s.as_str().to_owned()),
            AMQPValue::LongString(s) => long_string(s),
            AMQPValue::FieldArray(list) => {
                Self::List(list.as_slice().iter().map(Self::from).collect())
            }
            AMQPValue::Timestamp(t) => Self::Timestamp(*t),
            AMQPValue::FieldTable(table) => Self::Table(headers(table)),
            AMQPValue::ByteArray(bytes) => Self::Bytes(bytes.as_slice().to_vec()),
            AMQPValue::Void => Self::Void,
        }
    }
}

fn long_string(s: &LongString) -> Value {
    match std::str::from_utf8(s.as_bytes()) {
        Ok(text) => Value::Text(text.to_owned()),
        Err(_) => Value::Bytes(s.as_bytes().to_vec()),
    }
}

fn headers(table: &FieldTable) -> Headers {
    table
        .inner()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), Value::from(value)))
        .collect()
}

impl From<&BasicProperties> for Properties {
    fn from(p: &BasicProperties) -> Self {
        let text =
            |s: &Option<lapin::types::ShortString>| s.as_ref().map(|s| s.as_str().to_owned());
        Self {
            message_id: text(p.message_id()),
            kind: text(p.kind()),
            app_id: text(p.app_id()),
            content_type: text(p.content_type()),
            content_encoding: text(p.content_encoding()),
            correlation_id: text(p.correlation_id()),
            reply_to: text(p.reply_to()),
            expiration: text(p.expiration()),
            user_id: text(p.user_id()),
            delivery_mode: *p.delivery_mode(),
            priority: *p.priority(),
            timestamp: *p.timestamp(),
            headers: p.headers().as_ref().map(headers).unwrap_or_default(),
        }
    }
}

impl Message {
    pub(crate) fn from_delivery(delivery: &lapin::message::Delivery) -> Self {
        Self {
            body: delivery.data.clone(),
            properties: Properties::from(&delivery.properties),
            exchange: delivery.exchange.as_str().to_owned(),
            routing_key: delivery.routing_key.as_str().to_owned(),
            redelivered: delivery.redelivered,
        }
    }
}
