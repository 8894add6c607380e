//! The generated impl names everything by absolute path: it still compiles in a module that
//! shadows the prelude, the primitive types and the crate names it uses.

/// The types under test, derived where almost every name the generated code could use
/// without a leading `::` means something else.
mod shadowed {
    #![allow(non_camel_case_types, non_snake_case, dead_code, clippy::all)]

    struct Result;
    struct Option;
    struct String;
    struct Clone;
    struct u32;
    struct u64;
    struct str;
    fn Ok() {}
    fn Err() {}
    fn Some() {}
    fn None() {}
    mod core {}
    mod std {}
    mod memcache_typed {}
    mod serde {}
    trait Cacheable {}
    trait Serialize {}
    trait DeserializeOwned {}
    trait CacheValue {}
    type Key = ();
    const PREFIX: () = ();
    const TTL: () = ();
    const SCHEMA: () = ();

    #[derive(::memcache_typed::Cacheable)]
    #[cacheable(prefix = "hygiene", ttl = 30)]
    pub(crate) struct Single {
        #[cacheable(key)]
        pub(crate) id: ::core::primitive::u64,
        pub(crate) name: ::std::string::String,
    }

    #[derive(::memcache_typed::Cacheable)]
    pub(crate) struct Composite {
        #[cacheable(key)]
        pub(crate) tenant: ::std::string::String,
        #[cacheable(key)]
        pub(crate) id: ::core::primitive::u32,
    }

    #[derive(::memcache_typed::Cacheable)]
    #[cacheable(key_type = (::std::string::String, ::core::primitive::u64), ttl = 60)]
    pub(crate) struct Outside(pub(crate) ::core::primitive::u32);
}

/// serde's own derive is not what this test is about (and does not survive shadowed
/// primitive types), so the supertraits are written out here, outside the shadowing module.
mod serde_impls {
    use super::shadowed::{Composite, Outside, Single};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    impl Serialize for Single {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            (self.id, &self.name).serialize(serializer)
        }
    }

    impl<'de> Deserialize<'de> for Single {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let (id, name) = Deserialize::deserialize(deserializer)?;
            Ok(Single { id, name })
        }
    }

    impl Serialize for Outside {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            self.0.serialize(serializer)
        }
    }

    impl<'de> Deserialize<'de> for Outside {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            Ok(Outside(Deserialize::deserialize(deserializer)?))
        }
    }

    impl Serialize for Composite {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            (&self.tenant, self.id).serialize(serializer)
        }
    }

    impl<'de> Deserialize<'de> for Composite {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let (tenant, id) = Deserialize::deserialize(deserializer)?;
            Ok(Composite { tenant, id })
        }
    }
}

use memcache_typed::{CacheValue, Cacheable};
use shadowed::{Composite, Outside, Single};

#[test]
fn derive_compiles_with_shadowed_names() {
    let single = Single {
        id: 5,
        name: "x".to_owned(),
    };
    assert_eq!(Single::PREFIX, "hygiene");
    assert_eq!(Single::TTL, Some(30));
    assert_eq!(single.cache_key(), 5);
    assert_eq!(single.name, "x");

    let composite = Composite {
        tenant: "t".to_owned(),
        id: 9,
    };
    assert_eq!(Composite::PREFIX, "composite");
    assert_eq!(Composite::TTL, None);
    assert_eq!(composite.cache_key(), ("t".to_owned(), 9));

    assert_eq!(<Outside as CacheValue>::PREFIX, "outside");
    assert_eq!(<Outside as CacheValue>::TTL, Some(60));
    let key: <Outside as CacheValue>::Key = ("k".to_owned(), 1);
    assert_eq!(Outside(3).0, 3);
    assert_eq!(key.1, 1);
}
