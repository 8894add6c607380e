//! The schema fingerprint (`Cacheable::SCHEMA`), computed while the macro expands.
//!
//! The recipe is part of the crate's contract (values in caches depend on it) and is written
//! out in the crate documentation; `memcache-typed/tests/derive.rs` recomputes it
//! independently.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;
use sha2::{Digest, Sha256};

/// Domain separation tag: the hash input starts with these bytes.
const TAG: &[u8] = b"memcache-typed schema v1\0";

/// First four bytes (big-endian) of SHA-256 over the tag, the version (4 bytes big-endian),
/// then for each field in declaration order: its name, `:`, its type tokens, a NUL byte.
pub(crate) fn fingerprint<'a, I>(version: u32, fields: I) -> u32
where
    I: IntoIterator<Item = (String, &'a syn::Type)>,
{
    let mut hasher = Sha256::new();
    hasher.update(TAG);
    hasher.update(version.to_be_bytes());
    for (name, ty) in fields {
        hasher.update(name.as_bytes());
        hasher.update(b":");
        hasher.update(type_tokens(ty).as_bytes());
        hasher.update(b"\0");
    }
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The normalised token string of a type: every token written out and joined by one space.
///
/// Identifiers and literals are written as in the source, each punctuation character is a
/// token of its own (`::` is `: :`), brackets are tokens of their own, and invisible groups
/// (a `$t:ty` passed through `macro_rules!`) contribute only their contents. So
/// `Vec<Option<u8>>` is `Vec < Option < u8 > >` however it was spaced, and the string does not
/// depend on how a compiler version prints token streams.
pub(crate) fn type_tokens(ty: &syn::Type) -> String {
    let mut words = Vec::new();
    push_tokens(&mut words, ty.to_token_stream());
    words.join(" ")
}

fn push_tokens(words: &mut Vec<String>, tokens: TokenStream) {
    for token in tokens {
        match token {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                if !open.is_empty() {
                    words.push(open.to_owned());
                }
                push_tokens(words, group.stream());
                if !close.is_empty() {
                    words.push(close.to_owned());
                }
            }
            TokenTree::Ident(ident) => words.push(ident.to_string()),
            TokenTree::Punct(punct) => words.push(punct.as_char().to_string()),
            TokenTree::Literal(literal) => words.push(literal.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{fingerprint, type_tokens};

    fn ty(source: &str) -> syn::Type {
        syn::parse_str(source).expect(source)
    }

    #[test]
    fn type_tokens_ignore_spacing() {
        let cases = [
            ("u64", "u64"),
            ("Vec<Option<u8>>", "Vec < Option < u8 > >"),
            ("Vec < Option<u8> >", "Vec < Option < u8 > >"),
            ("std::string::String", "std : : string : : String"),
            ("[u8; 4]", "[ u8 ; 4 ]"),
            ("(u32, String)", "( u32 , String )"),
            ("&'static str", "& ' static str"),
            ("r#type", "r#type"),
        ];
        for (source, expected) in cases {
            assert_eq!(type_tokens(&ty(source)), expected, "{source}");
        }
    }

    #[test]
    fn fingerprint_depends_on_every_part() {
        let id = ty("u64");
        let name = ty("String");
        let base = fingerprint(1, [("id".to_owned(), &id), ("name".to_owned(), &name)]);
        assert_eq!(
            base,
            fingerprint(1, [("id".to_owned(), &id), ("name".to_owned(), &name)])
        );
        let other_version = fingerprint(2, [("id".to_owned(), &id), ("name".to_owned(), &name)]);
        let other_name = fingerprint(1, [("id".to_owned(), &id), ("nom".to_owned(), &name)]);
        let other_type = fingerprint(1, [("id".to_owned(), &id), ("name".to_owned(), &id)]);
        let other_order = fingerprint(1, [("name".to_owned(), &name), ("id".to_owned(), &id)]);
        for other in [other_version, other_name, other_type, other_order] {
            assert_ne!(base, other);
        }
    }
}
