//! Text helpers for messages that echo user input. Pure.

use std::borrow::Cow;

/// The text, cut to at most `max` characters with an ellipsis and its full
/// size, for echoing user input in an error without echoing all of it.
pub fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}... ({} bytes in all)", &text[..cut], text.len())),
    }
}
