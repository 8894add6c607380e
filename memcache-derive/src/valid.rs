//! Rules that involve more than one attribute, or an attribute and the struct itself.

use crate::ast::{Data, Field, Input, Key, Model, Style};
use crate::attr::Ctxt;
use quote::ToTokens;
use syn::ext::IdentExt;

/// The longest prefix accepted: memcached keys are at most 250 bytes, and the encoded key
/// needs room after `"{prefix}:"`.
pub(crate) const MAX_PREFIX_LEN: usize = 200;

/// Checks the parsed input and resolves defaults. Problems go into `cx`; the model is
/// returned whenever it could be built, so that the caller can still use its key type.
pub(crate) fn check<'a>(cx: &Ctxt, input: Input<'a>) -> Option<Model<'a>> {
    if input.generics.lt_token.is_some() || input.generics.where_clause.is_some() {
        let tokens = match &input.generics.where_clause {
            Some(where_clause) if input.generics.params.is_empty() => {
                where_clause.to_token_stream()
            }
            _ => input.generics.to_token_stream(),
        };
        let kind = match input.data {
            Data::Struct(_) => "structs",
            Data::Enum(_) => "enums",
        };
        cx.error_spanned_by(
            tokens,
            format_args!(
                "generic {kind} are not supported: each instantiation needs its own prefix and \
                 schema; implement Cacheable by hand for each concrete type"
            ),
        );
    }

    let prefix = match &input.attrs.prefix {
        Some(lit) => {
            let prefix = lit.value();
            if let Some(problem) = prefix_problem(&prefix) {
                cx.error_spanned_by(lit, format_args!("prefix {problem}"));
            }
            prefix
        }
        None => {
            let prefix = snake_case(&input.ident.unraw().to_string());
            if let Some(problem) = prefix_problem(&prefix) {
                cx.error_spanned_by(
                    input.ident,
                    format_args!(
                        "the default prefix `{}` (the type name in snake_case) {problem}; \
                         set #[cacheable(prefix = \"...\")]",
                        prefix.escape_debug()
                    ),
                );
            }
            prefix
        }
    };

    let key = if input.attrs.key_type_written {
        key_outside(cx, &input);
        Key::Outside
    } else {
        Key::Fields(key_fields(cx, &input)?)
    };
    Some(Model {
        prefix,
        ttl: input.attrs.ttl,
        version: input.attrs.version.unwrap_or(1),
        key,
        input,
    })
}

/// With `key_type`, the key is not part of the value: no field may be a key field too.
fn key_outside(cx: &Ctxt, input: &Input<'_>) {
    if let Some(named) = &input.attrs.key {
        cx.error_spanned_by(
            named,
            "key fields are named here, and key_type says that the key is not part of the \
             value; use one or the other",
        );
    }
    for field in input.all_fields() {
        if let Some(span) = field.attrs.key {
            cx.error_at(
                span,
                format_args!(
                    "{} is marked as a key field, and key_type says that the key is not part \
                     of the value; use one or the other",
                    field_name(field)
                ),
            );
        }
    }
}

fn field_name(field: &Field<'_>) -> String {
    match field.ident {
        Some(ident) => format!("`{}`", ident.unraw()),
        None => format!("field {}", field.index),
    }
}

/// The key fields, from `#[cacheable(key)]` on fields (field order) or from
/// `#[cacheable(key = "a, b")]` on the struct (the order given there).
fn key_fields(cx: &Ctxt, input: &Input<'_>) -> Option<Vec<usize>> {
    let Some(fields) = input.named_fields() else {
        let shape = match &input.data {
            Data::Struct(fields) if fields.style == Style::Tuple => "a tuple struct",
            Data::Struct(_) => "a unit struct",
            Data::Enum(_) => "an enum",
        };
        cx.error_spanned_by(
            &input.shape_tokens,
            format_args!(
                "{shape} has no named key field: if its key is not part of the value, give the \
                 key's type with #[cacheable(key_type = ...)] and store it in a KeyedCache"
            ),
        );
        return None;
    };
    let marked: Vec<usize> = fields
        .iter()
        .enumerate()
        .filter(|(_, field)| field.attrs.key.is_some())
        .map(|(index, _)| index)
        .collect();

    let Some(named) = &input.attrs.key else {
        if marked.is_empty() && input.attrs.key_written {
            // A malformed `key` on the struct, already reported.
            return None;
        }
        if marked.is_empty() {
            cx.error_at(
                input.ident.span(),
                "no key field: mark the key field with #[cacheable(key)], or, if the key is \
                 not part of the value, give its type with #[cacheable(key_type = ...)]",
            );
            return None;
        }
        return Some(marked);
    };

    if let Some(&first) = marked.first() {
        cx.error_spanned_by(
            named,
            format_args!(
                "key fields are named here and also marked with #[cacheable(key)] on {}; \
                 use one or the other",
                field_name(&fields[first])
            ),
        );
        return None;
    }

    let mut keys = Vec::new();
    let mut ok = true;
    let text = named.value();
    for name in text.split(',').map(str::trim) {
        if name.is_empty() {
            cx.error_spanned_by(
                named,
                "key must name one field, or several separated by commas, e.g. key = \"id\"",
            );
            return None;
        }
        let found = fields.iter().position(|field| {
            field
                .ident
                .is_some_and(|ident| ident.unraw() == name.trim_start_matches("r#"))
        });
        match found {
            Some(index) if keys.contains(&index) => {
                cx.error_spanned_by(named, format_args!("key field `{name}` is named twice"));
                ok = false;
            }
            Some(index) => keys.push(index),
            None => {
                cx.error_spanned_by(
                    named,
                    format_args!("key names a field that does not exist: no field `{name}`"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(keys)
}

/// Why `prefix` cannot start a memcached key, if it cannot, as a phrase: "must ...".
pub(crate) fn prefix_problem(prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if prefix.chars().any(char::is_whitespace) {
        return Some("must not contain whitespace".to_owned());
    }
    if prefix.chars().any(char::is_control) {
        return Some("must not contain control characters".to_owned());
    }
    if !prefix.is_ascii() {
        return Some("must be ASCII".to_owned());
    }
    if prefix.contains(':') {
        // `user:1` with key `2` and `user` with key `(1, 2)` would share `user:1:2`.
        return Some("must not contain `:`, which separates the prefix from the key".to_owned());
    }
    if prefix.len() > MAX_PREFIX_LEN {
        return Some(format!(
            "must be at most {MAX_PREFIX_LEN} bytes, this one has {}",
            prefix.len()
        ));
    }
    None
}

/// `UserProfile` -> `user_profile`, `HTTPServer` -> `http_server`, `Item2D` -> `item2_d`.
///
/// A word boundary is placed before an uppercase letter that follows a lowercase letter or a
/// digit, and before the last uppercase letter of a run when a lowercase letter follows it.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|next| next.is_lowercase());
            if prev.is_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_uppercase() && next_is_lower)
            {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{prefix_problem, snake_case};

    #[test]
    fn snake_case_of_type_names() {
        let cases = [
            ("User", "user"),
            ("UserProfile", "user_profile"),
            ("HTTPServer", "http_server"),
            ("UserID", "user_id"),
            ("Item2D", "item2_d"),
            ("V2Item", "v2_item"),
            ("already_snake", "already_snake"),
            ("Mixed_Case", "mixed_case"),
            ("A", "a"),
            ("ABC", "abc"),
        ];
        for (name, expected) in cases {
            assert_eq!(snake_case(name), expected, "snake_case({name:?})");
        }
    }

    /// The derive and `memcache_typed::key::check_prefix` (what `KeyedCache::new` and every
    /// command apply at run time) accept exactly the same prefixes.
    #[test]
    fn prefix_rules_match_the_run_time_check() {
        let mut prefixes: Vec<String> = [
            "user",
            "app.user-v2",
            "",
            " ",
            "a b",
            "a\tb",
            "a\nb",
            "a\u{7}b",
            "a\u{7f}",
            "caf\u{e9}",
            "\u{a0}",
            "a:b",
            ":",
            "user:",
            "%",
            "~!@#$^&*()",
            "\u{0}",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        prefixes.extend(["p".repeat(199), "p".repeat(200), "p".repeat(201)]);
        prefixes.extend((0u8..=255).map(|b| char::from(b).to_string()));
        for prefix in &prefixes {
            assert_eq!(
                prefix_problem(prefix).is_none(),
                memcache_typed::key::check_prefix(prefix).is_ok(),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn prefix_rules() {
        assert_eq!(prefix_problem("user"), None);
        assert_eq!(prefix_problem("app.user-v2"), None);
        assert_eq!(prefix_problem(&"p".repeat(200)), None);
        let bad = [
            ("", "empty"),
            ("a b", "whitespace"),
            ("a\tb", "whitespace"),
            ("a\u{7}b", "control"),
            ("a\u{7f}", "control"),
            ("caf\u{e9}", "ASCII"),
            ("app:user", "`:`"),
            (":", "`:`"),
            ("user:", "`:`"),
            (&*"p".repeat(201), "at most 200 bytes, this one has 201"),
        ];
        for (prefix, problem) in bad {
            let found = prefix_problem(prefix).expect(prefix);
            assert!(found.contains(problem), "{prefix:?}: {found}");
        }
    }
}
