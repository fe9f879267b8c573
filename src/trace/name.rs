//! A name as a request carries it, on its way to the writer. Copying it into a `String` cost
//! the request path an allocation (and the writer a cross-thread free) per named request;
//! names up to [`INLINE`] bytes, nearly all of them (git's object names are 38), ride inline.

use serde::{Serialize, Serializer};

/// Long enough for a git object name (38 hex digits).
const INLINE: usize = 38;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    Inline { len: u8, bytes: [u8; INLINE] },
    Long(Box<[u8]>),
}

impl Name {
    pub fn new(name: &[u8]) -> Name {
        if name.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..name.len()].copy_from_slice(name);
            Name::Inline {
                len: name.len() as u8,
                bytes,
            }
        } else {
            Name::Long(name.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Inline { len, bytes } => &bytes[..*len as usize],
            Name::Long(bytes) => bytes,
        }
    }
}

/// As text, invalid UTF-8 replaced (names are bytes; traces are JSON).
impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// The text of a name a record holds, either as queued or as read back.
pub trait NameText {
    fn text(&self) -> std::borrow::Cow<'_, str>;
}

impl NameText for Name {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }
}

impl NameText for String {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        self.as_str().into()
    }
}

#[cfg(test)]
mod tests {
    use super::Name;

    #[test]
    fn short_names_inline_long_ones_boxed() {
        let git = b"0123456789abcdef0123456789abcdef012345";
        assert!(matches!(Name::new(git), Name::Inline { len: 38, .. }));
        assert_eq!(Name::new(git).as_bytes(), git);
        let long = [b'x'; 300];
        assert!(matches!(Name::new(&long), Name::Long(_)));
        assert_eq!(Name::new(&long).as_bytes(), long);
        assert_eq!(Name::new(b"").as_bytes(), b"");
    }
}
