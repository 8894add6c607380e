//! Code generation: the `Cacheable` impl, or on error a fallback impl next to the errors.

use crate::ast::{Input, Model};
use crate::attr::Ctxt;
use crate::{schema, valid};
use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::DeriveInput;

pub(crate) fn derive(node: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let model = Input::from_syn(&cx, node).and_then(|input| valid::check(&cx, input));
    match (cx.check(), model) {
        (Ok(()), Some(model)) => impl_cacheable(&model),
        (Err(error), model) => fallback(node, model.as_ref(), error),
        // Unreachable in practice: every path that returns no model records an error.
        (Ok(()), None) => fallback(
            node,
            None,
            syn::Error::new_spanned(&node.ident, "Cacheable could not be derived"),
        ),
    }
}

fn impl_cacheable(model: &Model<'_>) -> TokenStream {
    let input = &model.input;
    let ident = input.ident;
    let key_type = key_type(model);
    let key_fields = model.keys.iter().map(|&index| {
        let field = &input.fields[index];
        // Spanned at the field's type so that "`T: Clone` is not satisfied" points there.
        let span = field.ty.span();
        let mut member = field.ident.clone();
        member.set_span(span);
        quote_spanned!(span=> ::core::clone::Clone::clone(&self.#member))
    });
    let cache_key = if model.keys.len() == 1 {
        quote!(#(#key_fields)*)
    } else {
        quote!((#(#key_fields),*))
    };
    let prefix = Literal::string(&model.prefix);
    let ttl = match model.ttl {
        Some(seconds) => {
            let seconds = Literal::u32_suffixed(seconds);
            quote!(::core::option::Option::Some(#seconds))
        }
        None => quote!(::core::option::Option::None),
    };
    let fingerprint = schema::fingerprint(
        model.version,
        input
            .fields
            .iter()
            .map(|field| (field.ident.unraw().to_string(), field.ty)),
    );
    let schema = Literal::u32_suffixed(fingerprint);

    quote! {
        #[allow(unused_qualifications)]
        #[automatically_derived]
        impl ::memcache_typed::__private::Cacheable for #ident {
            type Key = #key_type;
            const PREFIX: &'static ::core::primitive::str = #prefix;
            const TTL: ::core::option::Option<::core::primitive::u32> = #ttl;
            const SCHEMA: ::core::primitive::u32 = #schema;
            #[inline]
            fn cache_key(&self) -> <Self as ::memcache_typed::__private::Cacheable>::Key {
                #cache_key
            }
        }
    }
}

/// One key field: its type; several: the tuple of their types, in key order.
fn key_type(model: &Model<'_>) -> TokenStream {
    let types = model.keys.iter().map(|&index| model.input.fields[index].ty);
    if model.keys.len() == 1 {
        quote!(#(#types)*)
    } else {
        quote!((#(#types),*))
    }
}

/// The errors, plus an impl that keeps the rest of the user's code from reporting
/// "`T: Cacheable` is not satisfied" on top of the real problem.
fn fallback(node: &DeriveInput, model: Option<&Model<'_>>, error: syn::Error) -> TokenStream {
    let ident = &node.ident;
    let (impl_generics, ty_generics, where_clause) = node.generics.split_for_impl();
    let key_type = match model {
        Some(model) => key_type(model),
        None => quote!(::core::primitive::u64),
    };
    let error = error.to_compile_error();
    // The higher-ranked bound holds exactly when the plain one does, but stable Rust accepts
    // it even when it is false (a plain false bound on a concrete type is an error), so a
    // struct that does not implement Serialize gets no second error from this impl.
    let predicates = where_clause
        .into_iter()
        .flat_map(|clause| clause.predicates.iter());
    quote! {
        #error

        #[allow(unused_qualifications)]
        #[automatically_derived]
        impl #impl_generics ::memcache_typed::__private::Cacheable for #ident #ty_generics
        where
            #(#predicates,)*
            for<'__fallback> #ident #ty_generics: ::memcache_typed::__private::Serialize
                + ::memcache_typed::__private::DeserializeOwned,
        {
            type Key = #key_type;
            const PREFIX: &'static ::core::primitive::str = "";
            const TTL: ::core::option::Option<::core::primitive::u32> =
                ::core::option::Option::None;
            const SCHEMA: ::core::primitive::u32 = 0;
            fn cache_key(&self) -> <Self as ::memcache_typed::__private::Cacheable>::Key {
                ::core::unreachable!()
            }
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
}
