//! The model of a `#[derive(Cacheable)]` input: a struct (named, tuple or unit) or an enum,
//! its fields and its attributes.

use crate::attr::{self, Ctxt, FieldAttrs, TypeAttrs};
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{DeriveInput, Generics, Ident, Type};

/// A struct or an enum, its attributes parsed.
pub(crate) struct Input<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a Generics,
    pub(crate) attrs: TypeAttrs,
    pub(crate) data: Data<'a>,
    /// Where to point an error about the input's shape: the fields of a tuple struct, the
    /// name of a unit struct, the `enum` keyword.
    pub(crate) shape_tokens: TokenStream,
}

/// What the input is made of.
pub(crate) enum Data<'a> {
    Struct(Fields<'a>),
    Enum(Vec<Variant<'a>>),
}

/// The fields of a struct or of an enum variant.
pub(crate) struct Fields<'a> {
    pub(crate) style: Style,
    pub(crate) fields: Vec<Field<'a>>,
}

/// How fields are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// `{ a: A, b: B }`
    Named,
    /// `(A, B)`
    Tuple,
    /// no fields at all
    Unit,
}

/// One variant of an enum.
pub(crate) struct Variant<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) fields: Fields<'a>,
}

/// One field: named, or the `index`-th of a tuple.
pub(crate) struct Field<'a> {
    pub(crate) ident: Option<&'a Ident>,
    pub(crate) index: usize,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: FieldAttrs,
}

/// Where the key of a validated input comes from.
pub(crate) enum Key {
    /// Key fields, as indices into the struct's named fields, in key order: `Cacheable`.
    Fields(Vec<usize>),
    /// Outside the value, of the type in `attrs.key_type`: `CacheValue`.
    Outside,
}

/// A validated input, ready to expand.
pub(crate) struct Model<'a> {
    pub(crate) input: Input<'a>,
    /// The key prefix, explicit or derived from the type name.
    pub(crate) prefix: String,
    /// Default time to live in seconds.
    pub(crate) ttl: Option<u32>,
    /// Schema version, 1 unless given.
    pub(crate) version: u32,
    /// Where the key comes from.
    pub(crate) key: Key,
}

impl<'a> Input<'a> {
    /// Parses the input, reporting every shape and attribute problem into `cx`.
    ///
    /// Returns `None` for a union: there is nothing further to check then.
    pub(crate) fn from_syn(cx: &Ctxt, node: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::type_attrs(cx, &node.attrs);
        let (data, shape_tokens) = match &node.data {
            syn::Data::Struct(data) => {
                let tokens = match &data.fields {
                    syn::Fields::Unnamed(fields) => fields.to_token_stream(),
                    syn::Fields::Named(_) | syn::Fields::Unit => node.ident.to_token_stream(),
                };
                (Data::Struct(Fields::from_syn(cx, &data.fields)), tokens)
            }
            syn::Data::Enum(data) => {
                let variants = data
                    .variants
                    .iter()
                    .map(|variant| Variant {
                        ident: &variant.ident,
                        fields: Fields::from_syn(cx, &variant.fields),
                    })
                    .collect();
                (Data::Enum(variants), data.enum_token.to_token_stream())
            }
            syn::Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "Cacheable can only be derived for structs and enums, not unions",
                );
                return None;
            }
        };
        Some(Input {
            ident: &node.ident,
            generics: &node.generics,
            attrs,
            data,
            shape_tokens,
        })
    }

    /// The fields of a struct with named fields; `None` for other shapes.
    pub(crate) fn named_fields(&self) -> Option<&[Field<'a>]> {
        match &self.data {
            Data::Struct(fields) if fields.style == Style::Named => Some(&fields.fields),
            _ => None,
        }
    }

    /// Every field of the input, those of every variant of an enum included.
    pub(crate) fn all_fields(&self) -> Box<dyn Iterator<Item = &Field<'a>> + '_> {
        match &self.data {
            Data::Struct(fields) => Box::new(fields.fields.iter()),
            Data::Enum(variants) => Box::new(
                variants
                    .iter()
                    .flat_map(|variant| variant.fields.fields.iter()),
            ),
        }
    }
}

impl<'a> Fields<'a> {
    fn from_syn(cx: &Ctxt, fields: &'a syn::Fields) -> Self {
        let style = match fields {
            syn::Fields::Named(_) => Style::Named,
            syn::Fields::Unnamed(_) => Style::Tuple,
            syn::Fields::Unit => Style::Unit,
        };
        let fields = fields
            .iter()
            .enumerate()
            .map(|(index, field)| Field {
                ident: field.ident.as_ref(),
                index,
                ty: &field.ty,
                attrs: attr::field_attrs(cx, &field.attrs),
            })
            .collect();
        Fields { style, fields }
    }
}
