//! The schema fingerprint (`Cacheable::SCHEMA`), computed while the macro expands.
//!
//! The recipe is part of the crate's contract (values in caches depend on it) and is written
//! out in the crate documentation; `memcache-typed/tests/derive.rs` recomputes it
//! independently.

use crate::ast::{Data, Fields, Style};
use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;
use sha2::{Digest, Sha256};
use syn::ext::IdentExt;

/// Domain separation tag: the hash input starts with these bytes.
const TAG: &[u8] = b"memcache-typed schema v1\0";

/// First four bytes (big-endian) of SHA-256 over the tag, the version (4 bytes big-endian),
/// then the items that describe the input's shape, each followed by a NUL byte:
///
/// - a struct with named fields: for each field in declaration order, its name, `:`, its
///   type tokens (this was the whole recipe before tuple structs and enums were accepted,
///   and it is unchanged for them);
/// - a tuple struct: `(`, then for each field its index, `:`, its type tokens, then `)`;
/// - a unit struct: `;`;
/// - an enum: `enum`, then for each variant in declaration order `variant {name}` followed
///   by the items of its fields as for a struct.
///
/// No item of one kind can be read as an item of another: field items have a `:` after an
/// identifier or a number, the markers have none.
pub(crate) fn fingerprint(version: u32, data: &Data<'_>) -> u32 {
    let mut items = Vec::new();
    match data {
        Data::Struct(fields) => push_fields(&mut items, fields),
        Data::Enum(variants) => {
            items.push("enum".to_owned());
            for variant in variants {
                items.push(format!("variant {}", variant.ident.unraw()));
                push_fields(&mut items, &variant.fields);
            }
        }
    }
    hash_items(version, &items)
}

fn push_fields(items: &mut Vec<String>, fields: &Fields<'_>) {
    let item = |name: String, ty: &syn::Type| format!("{name}:{}", type_tokens(ty));
    match fields.style {
        Style::Named => items.extend(
            fields
                .fields
                .iter()
                .filter_map(|field| Some(item(field.ident?.unraw().to_string(), field.ty))),
        ),
        Style::Tuple => {
            items.push("(".to_owned());
            items.extend(
                fields
                    .fields
                    .iter()
                    .map(|field| item(field.index.to_string(), field.ty)),
            );
            items.push(")".to_owned());
        }
        Style::Unit => items.push(";".to_owned()),
    }
}

fn hash_items(version: u32, items: &[String]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(TAG);
    hasher.update(version.to_be_bytes());
    for item in items {
        hasher.update(item.as_bytes());
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
    use crate::ast::Input;
    use crate::attr::Ctxt;
    use sha2::{Digest, Sha256};

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

    /// The fingerprint of a type written as Rust source.
    fn of(source: &str) -> u32 {
        let node: syn::DeriveInput = syn::parse_str(source).expect(source);
        let cx = Ctxt::new();
        let input = Input::from_syn(&cx, &node).expect(source);
        cx.check().expect(source);
        fingerprint(input.attrs.version.unwrap_or(1), &input.data)
    }

    #[test]
    fn fingerprint_depends_on_every_part() {
        let base = of("struct S { id: u64, name: String }");
        assert_eq!(base, of("struct Renamed { id : u64 , name : String , }"));
        let others = [
            of("#[cacheable(version = 2)] struct S { id: u64, name: String }"),
            of("struct S { id: u64, nom: String }"),
            of("struct S { id: u64, name: u64 }"),
            of("struct S { name: String, id: u64 }"),
            of("struct S(u64, String);"),
            of("struct S(String, u64);"),
            of("struct S;"),
            of("struct S {}"),
            of("struct S();"),
            of("enum S { Id(u64), Name(String) }"),
            of("enum S { Id { id: u64 }, Name { name: String } }"),
            of("enum S { Id(u64), Name { name: String } }"),
            of("enum S { A, B }"),
            of("enum S { A, C }"),
            of("enum S { B, A }"),
            of("enum S {}"),
        ];
        let mut all = vec![base];
        for other in others {
            assert!(!all.contains(&other), "{other} repeats");
            all.push(other);
        }
    }

    /// The named-field recipe, unchanged since the first release: values in caches depend on
    /// it. (`memcache-typed/tests/derive.rs` recomputes it independently too.)
    #[test]
    fn named_struct_fingerprints_are_stable() {
        let mut hasher = Sha256::new();
        hasher.update(b"memcache-typed schema v1\0");
        hasher.update(2u32.to_be_bytes());
        hasher.update(b"id:u64\0name:String\0");
        let digest = hasher.finalize();
        let expected = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        assert_eq!(
            of("#[cacheable(version = 2)] struct User { id: u64, name: String }"),
            expected
        );
        assert_eq!(expected, 2234821164);
    }
}
