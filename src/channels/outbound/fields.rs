//! The field types of a `POST /v1/messages` body, each refusing a wrong value with the
//! sentence the CRM is shown ("must be a string", "must not be empty", …); the field's
//! path is added by [`super::parse`] (`serde_path_to_error`). An absent or `null` field
//! is `None` (`Option<…>`); whether it is required is decided there too.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Keys a struct does not name, gathered with `#[serde(flatten)]` so that a typo is
/// refused by name rather than dropped.
pub type Unknown = BTreeMap<String, IgnoredAny>;

/// What a JSON value is, for the one sentence a wrong one gets.
enum Seen {
    Str(String),
    Int(String),
    Float(f64),
    Bool(bool),
    Other,
}

struct SeenVisitor;

impl<'de> Visitor<'de> for SeenVisitor {
    type Value = Seen;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Seen, E> {
        Ok(Seen::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Seen, E> {
        Ok(Seen::Str(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Seen, E> {
        Ok(Seen::Int(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Seen, E> {
        Ok(Seen::Int(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Seen, E> {
        Ok(Seen::Float(v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Seen, E> {
        Ok(Seen::Bool(v))
    }
    fn visit_unit<E>(self) -> Result<Seen, E> {
        Ok(Seen::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seen, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Seen::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Seen, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Seen::Other)
    }
}

fn seen<'de, D: Deserializer<'de>>(d: D) -> Result<Seen, D::Error> {
    d.deserialize_any(SeenVisitor)
}

/// A string that is not empty.
#[derive(Debug, Clone)]
pub struct Str(pub String);

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match seen(d)? {
            Seen::Str(s) if s.is_empty() => Err(de::Error::custom("must not be empty")),
            Seen::Str(s) => Ok(Str(s)),
            _ => Err(de::Error::custom("must be a string")),
        }
    }
}

/// A string that may be empty (a reaction's emoji: empty removes it).
#[derive(Debug, Clone)]
pub struct AnyStr(pub String);

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match seen(d)? {
            Seen::Str(s) => Ok(AnyStr(s)),
            _ => Err(de::Error::custom("must be a string")),
        }
    }
}

/// An id: a string, or an integer (Telegram ids are numbers) taken as its decimal text.
#[derive(Debug, Clone)]
pub struct Id(pub String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match seen(d)? {
            Seen::Int(n) => Ok(Id(n)),
            Seen::Float(_) => Err(de::Error::custom("must be a string or an integer")),
            Seen::Str(s) if s.is_empty() => Err(de::Error::custom("must not be empty")),
            Seen::Str(s) => Ok(Id(s)),
            _ => Err(de::Error::custom("must be a string")),
        }
    }
}

/// `true` or `false`.
#[derive(Debug, Clone, Copy)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match seen(d)? {
            Seen::Bool(b) => Ok(Flag(b)),
            _ => Err(de::Error::custom("must be true or false")),
        }
    }
}

/// A JSON number.
#[derive(Debug, Clone, Copy)]
pub struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match seen(d)? {
            Seen::Float(x) => Ok(Number(x)),
            Seen::Int(n) => n
                .parse::<f64>()
                .map(Number)
                .map_err(|_| de::Error::custom("must be a number")),
            _ => Err(de::Error::custom("must be a number")),
        }
    }
}

/// A JSON object deserialized as `T` ("must be an object" for anything else).
#[derive(Debug, Clone)]
pub struct Obj<T>(pub T);

struct ObjVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Obj)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Obj<T>, E> {
        Err(E::custom("must be an object"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Obj<T>, E> {
        Err(E::custom("must be an object"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Obj<T>, E> {
        Err(E::custom("must be an object"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Obj<T>, E> {
        Err(E::custom("must be an object"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Obj<T>, E> {
        Err(E::custom("must be an object"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Obj<T>, E> {
        Err(E::custom("must be an object"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Obj<T>, A::Error> {
        Err(de::Error::custom("must be an object"))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjVisitor(PhantomData))
    }
}

/// Any JSON object, kept as it is (template components, contact cards).
pub type JsonObj = Obj<Map<String, Value>>;

/// An array of `T`; `NONEMPTY`: an empty one is refused ("must not be empty").
#[derive(Debug, Clone)]
pub struct List<T, const NONEMPTY: bool = true>(pub Vec<T>);

struct ListVisitor<T, const NONEMPTY: bool>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const NONEMPTY: bool> Visitor<'de> for ListVisitor<T, NONEMPTY> {
    type Value = List<T, NONEMPTY>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<T>()? {
            out.push(item);
        }
        if NONEMPTY && out.is_empty() {
            return Err(de::Error::custom("must not be empty"));
        }
        Ok(List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom("must be an array"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(E::custom("must be an array"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom("must be an array"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom("must be an array"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom("must be an array"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom("must be an array"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom("must be an array"))
    }
}

impl<'de, T: Deserialize<'de>, const NONEMPTY: bool> Deserialize<'de> for List<T, NONEMPTY> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListVisitor(PhantomData))
    }
}
