//! Errors that point at the input: a file, a line and a field path. Pure.

use std::fmt;

/// An error about one field of one object, before it is tied to a file.
///
/// `path` is the field path inside the document, as a user reads it:
/// `spec.recordSets[3].values[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// An error tied to its place in the input: `zones/acme.yaml:14: spec.recordSets[3].values[0]: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file (as the user named it) or another source name.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Field path inside the document; empty when the error is about the whole document.
    pub path: String,
    pub message: String,
}

/// The longest message and field path an error shows; input echoed in an
/// error is cut there, with an ellipsis.
pub const MAX_MESSAGE_CHARS: usize = 1000;
pub const MAX_PATH_CHARS: usize = 200;

impl Diagnostic {
    /// An error about a whole file (no line, no field).
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: None,
            path: String::new(),
            message: message.into(),
        }
        .bounded()
    }

    /// The same error with its message and path cut to their limits.
    pub fn bounded(mut self) -> Self {
        if let std::borrow::Cow::Owned(m) =
            crate::secrets::shorten(&self.message, MAX_MESSAGE_CHARS)
        {
            self.message = m;
        }
        if let std::borrow::Cow::Owned(p) = crate::secrets::shorten(&self.path, MAX_PATH_CHARS) {
            self.path = p;
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(
                f,
                ": {}",
                crate::secrets::shorten(&self.path, MAX_PATH_CHARS)
            )?;
        }
        write!(
            f,
            ": {}",
            crate::secrets::shorten(&self.message, MAX_MESSAGE_CHARS)
        )
    }
}

impl std::error::Error for Diagnostic {}

/// Every error found in one run, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
