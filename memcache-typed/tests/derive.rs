//! `#[derive(Cacheable)]`: what the generated impl says.

// Several types below exist only for their derived impls and are never built.
#![allow(dead_code)]

use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Serialize, Deserialize, Cacheable)]
struct UserProfile {
    #[cacheable(key)]
    id: u64,
    display_name: String,
}

#[derive(Serialize, Deserialize, Cacheable)]
struct HTTPServerStatus {
    #[cacheable(key)]
    host: String,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user", ttl = 300, version = 2)]
struct User {
    #[cacheable(key)]
    id: u64,
    name: String,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(ttl = 2592000)]
struct LongLived {
    #[cacheable(key)]
    id: u32,
}

#[derive(Debug, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "app.membership-v2")]
struct Membership {
    #[cacheable(key)]
    tenant: String,
    role: String,
    #[cacheable(key)]
    user: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key = "user, tenant")]
struct NamedKeys {
    tenant: String,
    user: u64,
    note: String,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key = "id")]
struct NamedKey {
    id: char,
    flag: bool,
}

#[derive(Serialize, Deserialize, Cacheable)]
struct RawIdent {
    #[cacheable(key)]
    r#type: String,
    r#loop: bool,
}

/// Key types must be the field types exactly: this only compiles if they are.
fn key_of<T: Cacheable>(value: &T) -> T::Key {
    value.cache_key()
}

#[test]
fn prefix_defaults_to_the_type_name_in_snake_case() {
    assert_eq!(UserProfile::PREFIX, "user_profile");
    assert_eq!(HTTPServerStatus::PREFIX, "http_server_status");
    assert_eq!(LongLived::PREFIX, "long_lived");
    assert_eq!(RawIdent::PREFIX, "raw_ident");
}

#[test]
fn explicit_prefix() {
    assert_eq!(User::PREFIX, "user");
    assert_eq!(Membership::PREFIX, "app.membership-v2");
}

#[test]
fn ttl_is_none_unless_given() {
    assert_eq!(User::TTL, Some(300));
    assert_eq!(LongLived::TTL, Some(2_592_000));
    assert_eq!(UserProfile::TTL, None);
    assert_eq!(Membership::TTL, None);
}

#[test]
fn single_key_is_the_field_type_and_value() {
    let user = User {
        id: 42,
        name: "Ada".to_owned(),
    };
    let key: u64 = key_of(&user);
    assert_eq!(key, 42);
    assert_eq!(user.name, "Ada", "cache_key does not move out of the value");

    let status = HTTPServerStatus {
        host: "db1".to_owned(),
    };
    let key: String = key_of(&status);
    assert_eq!(key, "db1");
    assert_eq!(status.host, "db1");

    let raw = RawIdent {
        r#type: "t".to_owned(),
        r#loop: true,
    };
    assert_eq!(key_of(&raw), "t");
    assert!(raw.r#loop);
}

#[test]
fn composite_key_is_the_tuple_in_field_order() {
    let membership = Membership {
        tenant: "acme".to_owned(),
        role: "admin".to_owned(),
        user: 7,
    };
    let key: (String, u64) = key_of(&membership);
    assert_eq!(key, ("acme".to_owned(), 7));
    assert_eq!(membership.role, "admin");
}

#[test]
fn key_named_on_the_struct() {
    let named = NamedKeys {
        tenant: "acme".to_owned(),
        user: 9,
        note: String::new(),
    };
    // The order given in `key = "user, tenant"`, not field order.
    let key: (u64, String) = key_of(&named);
    assert_eq!(key, (9, "acme".to_owned()));
    assert!(named.note.is_empty());

    let single = NamedKey {
        id: 'x',
        flag: false,
    };
    let key: char = key_of(&single);
    assert_eq!(key, 'x');
    assert!(!single.flag);
}

/// The documented recipe, computed independently of the macro.
fn recipe(version: u32, fields: &[(&str, &str)]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(b"memcache-typed schema v1\0");
    hasher.update(version.to_be_bytes());
    for (name, ty) in fields {
        hasher.update(name.as_bytes());
        hasher.update(b":");
        hasher.update(ty.as_bytes());
        hasher.update(b"\0");
    }
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

#[test]
fn schema_follows_the_documented_recipe() {
    assert_eq!(
        UserProfile::SCHEMA,
        recipe(1, &[("id", "u64"), ("display_name", "String")])
    );
    assert_eq!(
        User::SCHEMA,
        recipe(2, &[("id", "u64"), ("name", "String")])
    );
    assert_eq!(
        Membership::SCHEMA,
        recipe(
            1,
            &[("tenant", "String"), ("role", "String"), ("user", "u64")]
        )
    );
    // Field names without `r#`.
    assert_eq!(
        RawIdent::SCHEMA,
        recipe(1, &[("type", "String"), ("loop", "bool")])
    );
}

/// Same shape declared in different places: each module has its own `Item`.
mod same {
    pub mod a {
        #[derive(serde::Serialize, serde::Deserialize, memcache_typed::Cacheable)]
        pub struct Item {
            #[cacheable(key)]
            pub id: u64,
            pub tags: Vec<Option<String>>,
        }
    }
    pub mod b {
        // Same tokens with other spacing; other struct-level settings that are not schema;
        // `version = 1` written out.
        #[rustfmt::skip]
        #[derive(serde::Serialize, serde::Deserialize, memcache_typed::Cacheable)]
        #[cacheable(prefix = "elsewhere", ttl = 60, version = 1)]
        pub struct Item {
            #[cacheable(key)]
            pub id: u64,
            pub tags: Vec< Option<String> >,
        }
    }
    pub mod c {
        #[derive(serde::Serialize, serde::Deserialize, memcache_typed::Cacheable)]
        #[cacheable(key = "id")]
        pub struct Renamed {
            pub id: u64,
            pub tags: Vec<Option<String>>,
        }
    }
    pub mod changed_version {
        #[derive(serde::Serialize, serde::Deserialize, memcache_typed::Cacheable)]
        #[cacheable(version = 2)]
        pub struct Item {
            #[cacheable(key)]
            pub id: u64,
            pub tags: Vec<Option<String>>,
        }
    }
    pub mod changed_name {
        #[derive(serde::Serialize, serde::Deserialize, memcache_typed::Cacheable)]
        pub struct Item {
            #[cacheable(key)]
            pub id: u64,
            pub labels: Vec<Option<String>>,
        }
    }
    pub mod changed_type {
        #[derive(serde::Serialize, serde::Deserialize, memcache_typed::Cacheable)]
        pub struct Item {
            #[cacheable(key)]
            pub id: u64,
            pub tags: Vec<String>,
        }
    }
    pub mod changed_order {
        #[derive(serde::Serialize, serde::Deserialize, memcache_typed::Cacheable)]
        pub struct Item {
            pub tags: Vec<Option<String>>,
            #[cacheable(key)]
            pub id: u64,
        }
    }
    pub mod added_field {
        #[derive(serde::Serialize, serde::Deserialize, memcache_typed::Cacheable)]
        pub struct Item {
            #[cacheable(key)]
            pub id: u64,
            pub tags: Vec<Option<String>>,
            pub extra: bool,
        }
    }
}

#[test]
fn same_struct_same_schema() {
    use same::*;
    let schema = a::Item::SCHEMA;
    assert_eq!(
        b::Item::SCHEMA,
        schema,
        "spacing, prefix, ttl do not count; version defaults to 1"
    );
    assert_eq!(
        c::Renamed::SCHEMA,
        schema,
        "the struct name and how keys are marked do not count"
    );
    assert_eq!(
        schema,
        recipe(1, &[("id", "u64"), ("tags", "Vec < Option < String > >")])
    );
}

#[test]
fn schema_changes_with_version_field_names_and_types() {
    use same::*;
    let schema = a::Item::SCHEMA;
    let changed = [
        ("version", changed_version::Item::SCHEMA),
        ("field name", changed_name::Item::SCHEMA),
        ("field type", changed_type::Item::SCHEMA),
        ("field order", changed_order::Item::SCHEMA),
        ("added field", added_field::Item::SCHEMA),
    ];
    for (what, other) in changed {
        assert_ne!(other, schema, "changing the {what} must change SCHEMA");
        // The flags layout keeps the low 24 bits: they must differ too.
        assert_ne!(other & 0xff_ffff, schema & 0xff_ffff, "{what}: low 24 bits");
    }
}
