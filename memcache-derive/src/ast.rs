//! The model of a `#[derive(Cacheable)]` input: a struct with named fields and its attributes.

use crate::attr::{self, Ctxt, FieldAttrs, TypeAttrs};
use syn::{Data, DeriveInput, Fields, Generics, Ident, Type};

/// A struct with named fields, its attributes parsed.
pub(crate) struct Input<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a Generics,
    pub(crate) attrs: TypeAttrs,
    pub(crate) fields: Vec<Field<'a>>,
}

/// One named field.
pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: FieldAttrs,
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
    /// Indices into `input.fields` of the key fields, in key order.
    pub(crate) keys: Vec<usize>,
}

impl<'a> Input<'a> {
    /// Parses the input, reporting every shape and attribute problem into `cx`.
    ///
    /// Returns `None` when the input is not a struct with named fields: there is nothing
    /// further to check then.
    pub(crate) fn from_syn(cx: &Ctxt, node: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::type_attrs(cx, &node.attrs);
        let fields = match &node.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => fields,
                Fields::Unnamed(fields) => {
                    cx.error_spanned_by(
                        fields,
                        "Cacheable needs named fields; tuple structs are not supported",
                    );
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &node.ident,
                        "Cacheable needs a struct with named fields, one of them the key; \
                         unit structs are not supported",
                    );
                    return None;
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    "Cacheable can only be derived for structs with named fields, not enums",
                );
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "Cacheable can only be derived for structs with named fields, not unions",
                );
                return None;
            }
        };
        let fields = fields
            .named
            .iter()
            .filter_map(|field| {
                Some(Field {
                    // Always `Some` for named fields.
                    ident: field.ident.as_ref()?,
                    ty: &field.ty,
                    attrs: attr::field_attrs(cx, &field.attrs),
                })
            })
            .collect();
        Some(Input {
            ident: &node.ident,
            generics: &node.generics,
            attrs,
            fields,
        })
    }
}
