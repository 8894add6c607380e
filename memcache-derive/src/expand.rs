//! Code generation: the `Cacheable` impl, or on error a fallback impl next to the errors.

use crate::ast::{Input, Key, Model};
use crate::attr::Ctxt;
use crate::{schema, valid};
use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::DeriveInput;

pub(crate) fn derive(node: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let model = Input::from_syn(&cx, node).and_then(|input| valid::check(&cx, input));
    match (cx.check(), model) {
        (Ok(()), Some(model)) => match &model.key {
            Key::Fields(keys) => impl_cacheable(&model, keys),
            Key::Outside => impl_cache_value(&model),
        },
        (Err(error), model) => fallback(node, model.as_ref(), error),
        // Unreachable in practice: every path that returns no model records an error.
        (Ok(()), None) => fallback(
            node,
            None,
            syn::Error::new_spanned(&node.ident, "Cacheable could not be derived"),
        ),
    }
}

/// `PREFIX`, `TTL` and `SCHEMA`, as both traits declare them.
fn constants(model: &Model<'_>) -> TokenStream {
    let prefix = Literal::string(&model.prefix);
    let ttl = match model.ttl {
        Some(seconds) => {
            let seconds = Literal::u32_suffixed(seconds);
            quote!(::core::option::Option::Some(#seconds))
        }
        None => quote!(::core::option::Option::None),
    };
    let schema = Literal::u32_suffixed(schema::fingerprint(model.version, &model.input.data));
    quote! {
        const PREFIX: &'static ::core::primitive::str = #prefix;
        const TTL: ::core::option::Option<::core::primitive::u32> = #ttl;
        const SCHEMA: ::core::primitive::u32 = #schema;
    }
}

/// The key fields of a struct whose key is part of it: `Cacheable`.
fn impl_cacheable(model: &Model<'_>, keys: &[usize]) -> TokenStream {
    let input = &model.input;
    let ident = input.ident;
    let fields = input.named_fields().unwrap_or_default();
    let key_type = key_fields_type(fields, keys);
    let key_fields = keys.iter().filter_map(|&index| {
        let field = &fields[index];
        // Spanned at the field's type so that "`T: Clone` is not satisfied" points there.
        let span = field.ty.span();
        let mut member = field.ident?.clone();
        member.set_span(span);
        Some(quote_spanned!(span=> ::core::clone::Clone::clone(&self.#member)))
    });
    let cache_key = if keys.len() == 1 {
        quote!(#(#key_fields)*)
    } else {
        quote!((#(#key_fields),*))
    };
    let constants = constants(model);

    quote! {
        #[allow(unused_qualifications)]
        #[automatically_derived]
        impl ::memcache_typed::__private::Cacheable for #ident {
            type Key = #key_type;
            #constants
            #[inline]
            fn cache_key(&self) -> <Self as ::memcache_typed::__private::Cacheable>::Key {
                #cache_key
            }
        }
    }
}

/// A type whose key is given beside it (`key_type = ...`): `CacheValue`.
fn impl_cache_value(model: &Model<'_>) -> TokenStream {
    let ident = model.input.ident;
    let key_type = outside_key_type(&model.input);
    let constants = constants(model);
    quote! {
        #[allow(unused_qualifications)]
        #[automatically_derived]
        impl ::memcache_typed::__private::CacheValue for #ident {
            type Key = #key_type;
            #constants
        }
    }
}

/// One key field: its type; several: the tuple of their types, in key order.
fn key_fields_type(fields: &[crate::ast::Field<'_>], keys: &[usize]) -> TokenStream {
    let types = keys.iter().map(|&index| fields[index].ty);
    if keys.len() == 1 {
        quote!(#(#types)*)
    } else {
        quote!((#(#types),*))
    }
}

/// The type of `key_type = ...`, or `u64` when it could not be parsed (already reported).
fn outside_key_type(input: &Input<'_>) -> TokenStream {
    match &input.attrs.key_type {
        Some(key_type) => {
            let ty = &key_type.ty;
            quote!(#ty)
        }
        None => quote!(::core::primitive::u64),
    }
}

/// The errors, plus an impl that keeps the rest of the user's code from reporting
/// "`T: Cacheable` is not satisfied" on top of the real problem: a `CacheValue` impl when
/// `key_type` was given, else a `Cacheable` one.
fn fallback(node: &DeriveInput, model: Option<&Model<'_>>, error: syn::Error) -> TokenStream {
    let ident = &node.ident;
    let (impl_generics, ty_generics, where_clause) = node.generics.split_for_impl();
    let error = error.to_compile_error();
    // The higher-ranked bound holds exactly when the plain one does, but stable Rust accepts
    // it even when it is false (a plain false bound on a concrete type is an error), so a
    // struct that does not implement Serialize gets no second error from this impl.
    let predicates = where_clause
        .into_iter()
        .flat_map(|clause| clause.predicates.iter());
    let constants = quote! {
        const PREFIX: &'static ::core::primitive::str = "";
        const TTL: ::core::option::Option<::core::primitive::u32> =
            ::core::option::Option::None;
        const SCHEMA: ::core::primitive::u32 = 0;
    };
    let (trait_name, body) = match model {
        Some(
            model @ Model {
                key: Key::Outside, ..
            },
        ) => {
            let key_type = outside_key_type(&model.input);
            (quote!(CacheValue), quote!(type Key = #key_type; #constants))
        }
        _ => {
            let key_type = match model {
                Some(Model {
                    key: Key::Fields(keys),
                    input,
                    ..
                }) => key_fields_type(input.named_fields().unwrap_or_default(), keys),
                _ => quote!(::core::primitive::u64),
            };
            let body = quote! {
                type Key = #key_type;
                #constants
                fn cache_key(&self) -> <Self as ::memcache_typed::__private::Cacheable>::Key {
                    ::core::unreachable!()
                }
            };
            (quote!(Cacheable), body)
        }
    };
    quote! {
        #error

        #[allow(unused_qualifications)]
        #[automatically_derived]
        impl #impl_generics ::memcache_typed::__private::#trait_name for #ident #ty_generics
        where
            #(#predicates,)*
            for<'__fallback> #ident #ty_generics: ::memcache_typed::__private::Serialize
                + ::memcache_typed::__private::DeserializeOwned,
        {
            #body
        }
    }
}

#[cfg(test)]
mod tests {
    use super::derive;
    use quote::quote;

    /// The exact shape of the generated impl, for one single-key and one composite-key struct.
    #[test]
    fn generated_impls() {
        let user: syn::DeriveInput = syn::parse_quote! {
            #[cacheable(prefix = "user", ttl = 300, version = 2)]
            struct User {
                #[cacheable(key)]
                id: u64,
                name: String,
            }
        };
        let expected = quote! {
            #[allow(unused_qualifications)]
            #[automatically_derived]
            impl ::memcache_typed::__private::Cacheable for User {
                type Key = u64;
                const PREFIX: &'static ::core::primitive::str = "user";
                const TTL: ::core::option::Option<::core::primitive::u32> =
                    ::core::option::Option::Some(300u32);
                const SCHEMA: ::core::primitive::u32 = 2234821164u32;
                #[inline]
                fn cache_key(&self) -> <Self as ::memcache_typed::__private::Cacheable>::Key {
                    ::core::clone::Clone::clone(&self.id)
                }
            }
        };
        assert_eq!(derive(&user).to_string(), expected.to_string());

        let membership: syn::DeriveInput = syn::parse_quote! {
            struct Membership {
                #[cacheable(key)]
                tenant: String,
                role: String,
                #[cacheable(key)]
                user: u64,
            }
        };
        let expanded = derive(&membership).to_string();
        let key_type = quote!(
            type Key = (String, u64);
        )
        .to_string();
        let cache_key = quote! {
            (::core::clone::Clone::clone(&self.tenant), ::core::clone::Clone::clone(&self.user))
        }
        .to_string();
        let prefix = quote!(= "membership";).to_string();
        let ttl = quote!(= ::core::option::Option::None;).to_string();
        for part in [key_type, cache_key, prefix, ttl] {
            assert!(expanded.contains(&part), "{part}\nnot in\n{expanded}");
        }
    }

    /// `key_type` makes a `CacheValue` impl: the key type and the constants, no `cache_key`.
    #[test]
    fn generated_cache_value_impl() {
        let friends: syn::DeriveInput = syn::parse_quote! {
            #[cacheable(prefix = "friends", key_type = u64, ttl = 600)]
            struct Friends(Vec<u64>);
        };
        let expanded = derive(&friends).to_string();
        // Everything up to the schema, whose value the schema tests check.
        let head = quote!(
            #[automatically_derived]
            impl ::memcache_typed::__private::CacheValue for Friends {
                type Key = u64;
                const PREFIX: &'static ::core::primitive::str = "friends";
                const TTL: ::core::option::Option<::core::primitive::u32> =
                    ::core::option::Option::Some(600u32);
            }
        )
        .to_string();
        let head = head.trim_end_matches('}').trim_end();
        assert!(expanded.contains(head), "{head}\nnot in\n{expanded}");
        assert!(!expanded.contains("cache_key"), "{expanded}");

        let page: syn::DeriveInput = syn::parse_quote! {
            #[cacheable(key_type = (String, u32))]
            enum PageState { Live { version: u32 }, Gone }
        };
        let expanded = derive(&page).to_string();
        for part in [
            quote!(
                type Key = (String, u32);
            )
            .to_string(),
            quote!(= "page_state";).to_string(),
        ] {
            assert!(expanded.contains(&part), "{part}\nnot in\n{expanded}");
        }
    }
}
