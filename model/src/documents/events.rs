//! A serde deserializer fed one event at a time by yaml-rust2's parser, so
//! that a document is never held whole as a list of events. It reads what it
//! reads as serde_yaml's deserializer does, and refuses the rest (anchors,
//! aliases, tags, plain scalars whose type only YAML's resolution rules
//! decide) for the careful path to read. Pure: callers pass the text.

use std::fmt;
use std::str::Chars;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use super::MAX_NESTING;

/// Why the fast path gave up. Never shown: the careful path reads the file
/// again and reports what is wrong with its line and field path.
#[derive(Debug)]
pub(super) struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl de::Error for Refused {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Refused(msg.to_string())
    }
}

fn refused<T>(what: &str) -> Result<T, Refused> {
    Err(Refused(what.to_owned()))
}

/// The start of a node, once anchors, aliases and tags are refused.
enum Node {
    Scalar(String, TScalarStyle),
    Sequence,
    Mapping,
}

/// The event stream of one YAML text.
pub(super) struct Events<'a> {
    parser: Parser<Chars<'a>>,
    /// Mappings and sequences open now.
    depth: usize,
}

impl<'a> Events<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self {
            parser: Parser::new_from_str(text),
            depth: 0,
        }
    }

    fn next(&mut self) -> Result<Event, Refused> {
        self.parser
            .next_token()
            .map(|(event, _)| event)
            .map_err(|e| Refused(e.to_string()))
    }

    fn peek(&mut self) -> Result<&Event, Refused> {
        self.parser
            .peek()
            .map(|(event, _)| event)
            .map_err(|e| Refused(e.to_string()))
    }

    /// Moves to the next document: true when one starts, false at the end of the stream.
    pub(super) fn next_document(&mut self) -> Result<bool, Refused> {
        loop {
            match self.next()? {
                Event::StreamStart => {}
                Event::DocumentStart => return Ok(true),
                Event::StreamEnd => return Ok(false),
                _ => return refused("a document was expected"),
            }
        }
    }

    /// Reads the end of the document whose root node was just read.
    pub(super) fn end_document(&mut self) -> Result<(), Refused> {
        match self.next()? {
            Event::DocumentEnd => Ok(()),
            _ => refused("the end of the document was expected"),
        }
    }

    /// Reads the start of the next node.
    fn node(&mut self) -> Result<Node, Refused> {
        match self.next()? {
            Event::Scalar(value, style, 0, None) => {
                if read_alike(&value, style) {
                    Ok(Node::Scalar(value, style))
                } else {
                    refused("a scalar the two YAML parsers may read apart")
                }
            }
            Event::SequenceStart(0, None) => self.open(Node::Sequence),
            Event::MappingStart(0, None) => self.open(Node::Mapping),
            Event::Alias(_) => refused("an alias"),
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..) => {
                refused("an anchor or a tag")
            }
            _ => refused("a value was expected"),
        }
    }

    fn open(&mut self, node: Node) -> Result<Node, Refused> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return refused("nested too deep");
        }
        Ok(node)
    }

    /// True when the next event closes the open sequence or mapping.
    fn at_end(&mut self) -> Result<bool, Refused> {
        Ok(matches!(
            self.peek()?,
            Event::SequenceEnd | Event::MappingEnd
        ))
    }

    /// Reads the end of the sequence or mapping the visitor has read.
    fn close(&mut self) -> Result<(), Refused> {
        match self.next()? {
            Event::SequenceEnd | Event::MappingEnd => {
                self.depth -= 1;
                Ok(())
            }
            _ => refused("elements the type does not read"),
        }
    }

    /// True when the next event is a plain scalar that is null or empty:
    /// what serde_yaml reads as a missing option.
    fn next_is_null(&mut self) -> Result<bool, Refused> {
        Ok(matches!(
            self.peek()?,
            Event::Scalar(v, TScalarStyle::Plain, 0, None) if v.is_empty() || is_null(v)
        ))
    }

    /// True when the next event is an empty plain scalar (`values:` and
    /// nothing after): what serde_yaml reads as an empty sequence or mapping.
    fn next_is_empty(&mut self) -> Result<bool, Refused> {
        Ok(matches!(
            self.peek()?,
            Event::Scalar(v, TScalarStyle::Plain, 0, None) if v.is_empty()
        ))
    }

    fn scalar(&mut self) -> Result<(String, TScalarStyle), Refused> {
        match self.node()? {
            Node::Scalar(value, style) => Ok((value, style)),
            Node::Sequence | Node::Mapping => refused("a scalar was expected"),
        }
    }

    fn plain_scalar(&mut self) -> Result<String, Refused> {
        match self.scalar()? {
            (value, TScalarStyle::Plain) => Ok(value),
            _ => refused("a plain scalar was expected"),
        }
    }

    fn collection<'de, V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Refused> {
        let value = visitor.visit_seq(Elements { events: self })?;
        self.close()?;
        Ok(value)
    }

    fn mapping<'de, V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Refused> {
        let value = visitor.visit_map(Elements { events: self })?;
        self.close()?;
        Ok(value)
    }
}

/// False for scalars that yaml-rust2 reads where libyaml (serde_yaml's
/// parser, which the careful path uses) refuses them or reads them otherwise:
/// a plain scalar starting with an indicator character (`{ k: | }`), or a
/// block scalar of nothing but line breaks.
fn read_alike(value: &str, style: TScalarStyle) -> bool {
    match style {
        TScalarStyle::Plain => !value.starts_with([
            '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@',
            '`',
        ]),
        TScalarStyle::Literal | TScalarStyle::Folded => !value.bytes().all(|b| b == b'\n'),
        TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => true,
    }
}

/// serde_yaml's null (besides the empty scalar).
fn is_null(v: &str) -> bool {
    matches!(v, "null" | "Null" | "NULL" | "~")
}

/// serde_yaml's booleans.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Decimal digits without a leading zero: the integers that read the same
/// under every YAML schema. Others (`+1`, `0x1f`, `010`) go to the careful path.
fn plain_decimal(v: &str) -> Option<&str> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    plain.then_some(digits)
}

/// A plain scalar that serde_yaml resolves to a string: not null, not a
/// boolean, and not starting like a number (digit, sign, dot).
fn plainly_text(v: &str) -> bool {
    !v.is_empty()
        && !is_null(v)
        && parse_bool(v).is_none()
        && !v.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

/// A plain scalar that is a string whatever YAML's resolution rules: plainly
/// text, or shaped like no number: a space inside (`10 mx.example.`), two
/// dots (`192.0.2.1`), or a letter no number holds after a leading digit
/// (`3d`, but not `1e3` nor `0x1d`).
fn surely_text(v: &str) -> bool {
    let prefixed = v.starts_with('0') && v[1..].starts_with(|c: char| c.is_ascii_alphabetic());
    plainly_text(v)
        || (!v.is_empty()
            && v.trim() == v
            && (v.contains(' ')
                || v.matches('.').count() >= 2
                || (v.starts_with(|c: char| c.is_ascii_digit())
                    && !prefixed
                    && v.contains(|c: char| c.is_alphabetic() && !matches!(c, 'e' | 'E')))))
}

impl<'de> de::Deserializer<'de> for &mut Events<'_> {
    type Error = Refused;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match self.node()? {
            Node::Scalar(v, TScalarStyle::Plain) => {
                if v.is_empty() || is_null(&v) {
                    visitor.visit_unit()
                } else if let Some(b) = parse_bool(&v) {
                    visitor.visit_bool(b)
                } else if plainly_text(&v) {
                    visitor.visit_string(v)
                } else {
                    refused("a plain scalar that may be a number")
                }
            }
            Node::Scalar(v, _) => visitor.visit_string(v),
            Node::Sequence => self.collection(visitor),
            Node::Mapping => self.mapping(visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match parse_bool(&self.plain_scalar()?) {
            Some(b) => visitor.visit_bool(b),
            None => refused("a boolean was expected"),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        let v = self.plain_scalar()?;
        match plain_decimal(&v).and_then(|_| v.parse::<i64>().ok()) {
            Some(n) => visitor.visit_i64(n),
            None => refused("an integer was expected"),
        }
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        let v = self.plain_scalar()?;
        match plain_decimal(&v)
            .filter(|digits| digits.len() == v.len())
            .and_then(|_| v.parse::<u64>().ok())
        {
            Some(n) => visitor.visit_u64(n),
            None => refused("an unsigned integer was expected"),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refused> {
        refused("floating-point numbers are read by the careful path")
    }

    fn deserialize_f64<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refused> {
        refused("floating-point numbers are read by the careful path")
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.deserialize_string(visitor)
    }

    /// A quoted or block scalar, or a plain one that YAML resolves to a
    /// string. `300`, `true`, `~` and an empty value are not strings to the
    /// careful path, which refuses them where text is expected.
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match self.scalar()? {
            (v, TScalarStyle::Plain) if !surely_text(&v) => {
                refused("a plain scalar that may not be a string")
            }
            (v, _) => visitor.visit_string(v),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refused> {
        refused("bytes are not read from YAML")
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refused> {
        refused("bytes are not read from YAML")
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        if self.next_is_null()? {
            self.next()?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        let v = self.plain_scalar()?;
        if v.is_empty() || is_null(&v) {
            visitor.visit_unit()
        } else {
            refused("null was expected")
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Refused> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Refused> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        if self.next_is_empty()? {
            self.next()?;
            return visitor.visit_seq(Empty);
        }
        match self.node()? {
            Node::Sequence => self.collection(visitor),
            _ => refused("a sequence was expected"),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Refused> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Refused> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        if self.next_is_empty()? {
            self.next()?;
            return visitor.visit_map(Empty);
        }
        match self.node()? {
            Node::Mapping => self.mapping(visitor),
            _ => refused("a mapping was expected"),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refused> {
        self.deserialize_map(visitor)
    }

    /// A unit variant named by a scalar; variants with content go to the careful path.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refused> {
        let variant: de::value::StringDeserializer<Refused> = self.scalar()?.0.into_deserializer();
        visitor.visit_enum(variant)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.deserialize_string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        let open = self.depth;
        if !matches!(self.node()?, Node::Scalar(..)) {
            while self.depth > open {
                if self.at_end()? {
                    self.close()?;
                } else {
                    self.node()?;
                }
            }
        }
        visitor.visit_unit()
    }
}

/// The elements of the sequence, or the entries of the mapping, open now.
struct Elements<'e, 'a> {
    events: &'e mut Events<'a>,
}

impl<'de> de::SeqAccess<'de> for Elements<'_, '_> {
    type Error = Refused;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Refused> {
        if self.events.at_end()? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.events).map(Some)
    }
}

impl<'de> de::MapAccess<'de> for Elements<'_, '_> {
    type Error = Refused;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Refused> {
        if self.events.at_end()? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.events).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Refused> {
        seed.deserialize(&mut *self.events)
    }
}

/// What serde_yaml reads an empty or null scalar as, where a sequence or a mapping is expected.
struct Empty;

impl<'de> de::SeqAccess<'de> for Empty {
    type Error = Refused;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        _seed: T,
    ) -> Result<Option<T::Value>, Refused> {
        Ok(None)
    }
}

impl<'de> de::MapAccess<'de> for Empty {
    type Error = Refused;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        _seed: K,
    ) -> Result<Option<K::Value>, Refused> {
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, _seed: V) -> Result<V::Value, Refused> {
        refused("an empty mapping has no value")
    }
}
