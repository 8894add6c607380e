//! Parsing of `#[cacheable(...)]` attributes.
//!
//! Every problem found here is pushed into a [`Ctxt`] instead of returned, so that one
//! compilation reports every bad attribute at once (serde's approach), each spanned at the
//! offending token.

use proc_macro2::{Group, Span};
use quote::ToTokens;
use std::cell::RefCell;
use std::fmt::Display;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprLit, Lit, LitStr, Token};

/// The largest TTL memcached treats as relative: larger values are read as a unix timestamp.
pub(crate) const MAX_RELATIVE_TTL: u64 = 60 * 60 * 24 * 30;

/// Collects errors so that all of them are reported together.
pub(crate) struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    pub(crate) fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Vec::new()),
        }
    }

    /// Records an error spanned at `tokens`.
    pub(crate) fn error_spanned_by<T: ToTokens, M: Display>(&self, tokens: T, message: M) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Records an error at `span`.
    pub(crate) fn error_at<M: Display>(&self, span: Span, message: M) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new(span, message));
    }

    /// Records an error that syn produced.
    pub(crate) fn syn_error(&self, error: syn::Error) {
        self.errors.borrow_mut().push(error);
    }

    /// All recorded errors combined into one, or `Ok` if there were none.
    pub(crate) fn check(self) -> syn::Result<()> {
        let mut errors = self.errors.into_inner().into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            combined.combine(error);
        }
        Err(combined)
    }
}

/// `#[cacheable(...)]` on the struct.
#[derive(Default)]
pub(crate) struct TypeAttrs {
    /// `prefix = "..."`
    pub(crate) prefix: Option<LitStr>,
    /// `ttl = N`, already checked to be in `1..=MAX_RELATIVE_TTL`.
    pub(crate) ttl: Option<u32>,
    /// `version = N`
    pub(crate) version: Option<u32>,
    /// `key = "field"` or `key = "field_a, field_b"`: key fields named on the type.
    pub(crate) key: Option<LitStr>,
    /// Whether `key` appeared on the struct at all, even malformed (then it was reported, and
    /// "no key field" would only repeat the problem).
    pub(crate) key_written: bool,
    /// `key_type = Type`: the key lives outside the value, and has this type.
    pub(crate) key_type: Option<KeyType>,
    /// Whether `key_type` appeared at all, even malformed (then the impl to emit is still a
    /// `CacheValue` one, and "no key field" would be beside the point).
    pub(crate) key_type_written: bool,
}

/// `key_type = Type` on the type.
pub(crate) struct KeyType {
    /// The key type.
    pub(crate) ty: syn::Type,
}

/// `#[cacheable(...)]` on a field.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    /// Span of the `key` word in `#[cacheable(key)]`.
    pub(crate) key: Option<Span>,
}

const TYPE_ATTRIBUTES: &[&str] = &["prefix", "ttl", "version", "key", "key_type"];

pub(crate) fn type_attrs(cx: &Ctxt, attrs: &[Attribute]) -> TypeAttrs {
    let mut out = TypeAttrs::default();
    for attr in attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cacheable"))
    {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("prefix") {
                let value = parse_value(&meta)?;
                if out.prefix.is_some() {
                    duplicate(cx, &meta);
                }
                match value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(lit), ..
                    }) => out.prefix = Some(lit),
                    other => cx.error_spanned_by(other, "prefix must be a string literal"),
                }
            } else if meta.path.is_ident("ttl") {
                let value = parse_value(&meta)?;
                if out.ttl.is_some() {
                    duplicate(cx, &meta);
                }
                out.ttl = ttl(cx, &value);
            } else if meta.path.is_ident("version") {
                let value = parse_value(&meta)?;
                if out.version.is_some() {
                    duplicate(cx, &meta);
                }
                out.version = version(cx, &value);
            } else if meta.path.is_ident("key") {
                out.key_written = true;
                if !meta.input.peek(Token![=]) {
                    cx.error_spanned_by(
                        &meta.path,
                        "name the key field here with `key = \"field\"`, \
                         or put #[cacheable(key)] on the field",
                    );
                    return skip_value(&meta);
                }
                let value = parse_value(&meta)?;
                if out.key.is_some() {
                    duplicate(cx, &meta);
                }
                match value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(lit), ..
                    }) => out.key = Some(lit),
                    other => cx.error_spanned_by(
                        other,
                        "key must be a string literal naming the key field, e.g. key = \"id\"; \
                         for a key that is not part of the value, write key_type = <type>",
                    ),
                }
            } else if meta.path.is_ident("key_type") {
                out.key_type_written = true;
                if out.key_type.is_some() {
                    duplicate(cx, &meta);
                }
                out.key_type = key_type(cx, &meta)?;
            } else {
                cx.error_spanned_by(
                    &meta.path,
                    format_args!(
                        "unknown cacheable attribute `{}`, expected one of `prefix`, `ttl`, \
                         `version`, `key`, `key_type`",
                        path_name(&meta)
                    ),
                );
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(error) = result {
            cx.syn_error(error);
        }
    }
    out
}

pub(crate) fn field_attrs(cx: &Ctxt, attrs: &[Attribute]) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for attr in attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cacheable"))
    {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("key") {
                if out.key.is_some() {
                    duplicate(cx, &meta);
                }
                if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                    cx.error_spanned_by(
                        &meta.path,
                        "`key` on a field takes no value: write #[cacheable(key)]",
                    );
                    skip_value(&meta)?;
                }
                out.key = Some(meta.path.require_ident()?.span());
            } else {
                let name = path_name(&meta);
                if TYPE_ATTRIBUTES.contains(&name.as_str()) {
                    cx.error_spanned_by(
                        &meta.path,
                        format_args!("`{name}` belongs on the struct, not on a field"),
                    );
                } else {
                    cx.error_spanned_by(
                        &meta.path,
                        format_args!("unknown cacheable field attribute `{name}`, expected `key`"),
                    );
                }
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(error) = result {
            cx.syn_error(error);
        }
    }
    out
}

/// `key_type = Type`: a type, not a string naming one.
fn key_type(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<KeyType>> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        cx.error_spanned_by(
            &lit,
            "key_type takes a type, not a string: write key_type = u64, or key_type = (String, u32)",
        );
        return Ok(None);
    }
    let ty: syn::Type = value.parse()?;
    Ok(Some(KeyType { ty }))
}

/// `ttl = N` where N is a positive integer literal no larger than 30 days.
fn ttl(cx: &Ctxt, value: &Expr) -> Option<u32> {
    let Some(lit) = int_literal(value) else {
        cx.error_spanned_by(value, "ttl must be a positive integer literal, in seconds");
        return None;
    };
    // Digits that do not fit in a u64 are certainly too large.
    let seconds = lit.base10_parse::<u64>().unwrap_or(u64::MAX);
    if seconds == 0 {
        cx.error_spanned_by(
            value,
            "ttl must be a positive integer literal, in seconds; \
             leave ttl out for entries that do not expire",
        );
        return None;
    }
    if seconds > MAX_RELATIVE_TTL {
        cx.error_spanned_by(
            value,
            format_args!(
                "ttl must be at most {MAX_RELATIVE_TTL} seconds (30 days): \
                 memcached reads larger values as a unix timestamp"
            ),
        );
        return None;
    }
    u32::try_from(seconds).ok()
}

/// `version = N` where N is an integer literal that fits in a u32.
fn version(cx: &Ctxt, value: &Expr) -> Option<u32> {
    let parsed = int_literal(value).and_then(|lit| lit.base10_parse::<u32>().ok());
    if parsed.is_none() {
        cx.error_spanned_by(
            value,
            "version must be an integer literal from 0 to 4294967295",
        );
    }
    parsed
}

fn int_literal(value: &Expr) -> Option<&syn::LitInt> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => Some(lit),
        Expr::Group(group) => int_literal(&group.expr),
        _ => None,
    }
}

/// Parses `= <expr>`; a missing `=` is reported by syn ("expected `=`").
fn parse_value(meta: &ParseNestedMeta<'_>) -> syn::Result<Expr> {
    meta.value()?.parse()
}

/// Consumes whatever follows an attribute name that was already reported, so that parsing
/// continues with the next item and later errors are reported too.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        parse_value(meta)?;
    } else if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        meta.input.parse::<Group>()?;
    }
    Ok(())
}

fn duplicate(cx: &Ctxt, meta: &ParseNestedMeta<'_>) {
    cx.error_spanned_by(
        &meta.path,
        format_args!("duplicate cacheable attribute `{}`", path_name(meta)),
    );
}

fn path_name(meta: &ParseNestedMeta<'_>) -> String {
    meta.path.to_token_stream().to_string().replace(' ', "")
}
