//! Interned names: an event's operation name (`f`), node and named process.
//!
//! A history of 10 M operations has 20 M events but a handful of distinct
//! names (`read`, `write`, `n1`…), so each event holds a [`Sym`]: one
//! pointer to the name's single copy, instead of a `String` of its own
//! (24 bytes plus a heap block each). A `Sym` reads as a `&str` (it derefs
//! to one and compares with `str`, `&str` and `String`), so code that read
//! the `String` reads it unchanged.
//!
//! Names are interned for the life of the process and never freed: they
//! are few in any real history. A file with millions of distinct names
//! costs what it would have cost as strings, held until exit.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Mutex, OnceLock};

/// An interned string: 8 bytes, a thin pointer to the name's only copy.
///
/// Equal names are the same pointer, so equality is a pointer compare;
/// hashing and ordering are the string's (so a `HashMap<Sym, _>` can be
/// looked up by `&str`).
#[derive(Clone)]
pub struct Sym(&'static &'static str);

type Table = crate::history::FxHashMap<&'static str, Sym>;

fn global() -> &'static Mutex<Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

thread_local! {
    /// This thread's view of the table: parsing 20 M events takes no lock
    /// once each name has been seen.
    static LOCAL: RefCell<Table> = RefCell::new(Table::default());
}

impl Sym {
    /// The symbol for `s`, interning it on first sight.
    pub fn new(s: &str) -> Sym {
        if let Some(hit) = LOCAL.with(|t| t.borrow().get(s).cloned()) {
            return hit;
        }
        let sym = {
            // A poisoned lock still holds a consistent table: each insert
            // is one call.
            let mut g = global().lock().unwrap_or_else(|p| p.into_inner());
            match g.get(s) {
                Some(hit) => hit.clone(),
                None => {
                    let text: &'static str = Box::leak(s.to_owned().into_boxed_str());
                    let sym = Sym(Box::leak(Box::new(text)));
                    g.insert(text, sym.clone());
                    sym
                }
            }
        };
        LOCAL.with(|t| t.borrow_mut().insert(*sym.0, sym.clone()));
        sym
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl Deref for Sym {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl AsRef<str> for Sym {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl Borrow<str> for Sym {
    fn borrow(&self) -> &str {
        self.0
    }
}

impl Default for Sym {
    fn default() -> Sym {
        Sym::new("")
    }
}

impl PartialEq for Sym {
    fn eq(&self, other: &Sym) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}
impl Eq for Sym {}

impl Hash for Sym {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash(h)
    }
}

impl PartialOrd for Sym {
    fn partial_cmp(&self, other: &Sym) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sym {
    fn cmp(&self, other: &Sym) -> Ordering {
        self.0.cmp(other.0)
    }
}

macro_rules! eq_str {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Sym {
            fn eq(&self, other: &$t) -> bool {
                *self.0 == AsRef::<str>::as_ref(other)
            }
        }
        impl PartialEq<Sym> for $t {
            fn eq(&self, other: &Sym) -> bool {
                AsRef::<str>::as_ref(self) == *other.0
            }
        }
    )*};
}
eq_str!(str, &str, String);

impl From<&str> for Sym {
    fn from(s: &str) -> Sym {
        Sym::new(s)
    }
}
impl From<String> for Sym {
    fn from(s: String) -> Sym {
        Sym::new(&s)
    }
}
impl From<&String> for Sym {
    fn from(s: &String) -> Sym {
        Sym::new(s)
    }
}
impl From<Sym> for String {
    fn from(s: Sym) -> String {
        s.0.to_string()
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
impl fmt::Debug for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(*self.0, f)
    }
}

impl Serialize for Sym {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}
impl<'de> Deserialize<'de> for Sym {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sym, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Sym::new(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_names_are_one_copy_and_read_as_str() {
        let a = Sym::new("write");
        let b = Sym::from(String::from("write"));
        assert!(std::ptr::eq(a.0, b.0));
        assert_eq!(a, b);
        assert_eq!(a, "write");
        assert_eq!("write", a);
        assert_ne!(a, Sym::new("read"));
        assert_eq!(a.len(), 5);
        assert_eq!(format!("{a} {a:?}"), "write \"write\"");
        let m: std::collections::HashMap<Sym, u8> = [(a, 1)].into();
        assert_eq!(m.get("write"), Some(&1));
        assert_eq!(std::mem::size_of::<Option<Sym>>(), 8);
        // Interned from another thread: the same pointer.
        let c = std::thread::spawn(|| Sym::new("write")).join().unwrap();
        assert_eq!(c, b);
    }
}
