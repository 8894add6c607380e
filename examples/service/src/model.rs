//! What the service stores and serves: users, products and pages of the product list, each
//! a [`Cacheable`] type with its own key prefix and expiry.

use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

/// How many products one page of the product list holds.
pub const PAGE_SIZE: u32 = 20;

/// A row of the `users` table, cached under `user:{id}` for five minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user", ttl = 300)]
pub struct User {
    /// The primary key.
    #[cacheable(key)]
    pub id: u64,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
}

/// A row of the `products` table, cached under `product:{id}` for five minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "product", ttl = 300)]
pub struct Product {
    /// The primary key.
    #[cacheable(key)]
    pub id: u64,
    /// Display name.
    pub name: String,
    /// Price in cents.
    pub price_cents: i64,
    /// Units in stock.
    pub stock: i64,
}

impl Product {
    /// The page of the product list (ordered by id, [`PAGE_SIZE`] a page, from page 0) that
    /// shows the product with this id: the derived entry that a write to it invalidates.
    /// The ids run from 1 without gaps (the service seeds them and has no route that adds
    /// or removes a product), so the page follows from the id alone.
    pub fn page_of(id: u64) -> u32 {
        let index = id.saturating_sub(1) / u64::from(PAGE_SIZE);
        u32::try_from(index).unwrap_or(u32::MAX)
    }
}

/// One page of the product list: a value derived from the `products` rows it shows, cached
/// under `product_page:{page}` for a minute. A write to one of its products invalidates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "product_page", ttl = 60)]
pub struct ProductPage {
    /// The page number, from 0.
    #[cacheable(key)]
    pub page: u32,
    /// The products on the page, by id; fewer than [`PAGE_SIZE`] on the last page, none past
    /// it.
    pub items: Vec<Product>,
}

/// A change to a user: the fields given are set, the others kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserChange {
    /// A new display name.
    #[serde(default)]
    pub name: Option<String>,
    /// A new e-mail address.
    #[serde(default)]
    pub email: Option<String>,
}

/// A change to a product: the fields given are set, the others kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductChange {
    /// A new display name.
    #[serde(default)]
    pub name: Option<String>,
    /// A new price in cents.
    #[serde(default)]
    pub price_cents: Option<i64>,
    /// A new stock count.
    #[serde(default)]
    pub stock: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_are_paged_by_id_from_one() {
        assert_eq!(Product::page_of(1), 0);
        assert_eq!(Product::page_of(20), 0);
        assert_eq!(Product::page_of(21), 1);
        assert_eq!(Product::page_of(0), 0);
        assert_eq!(Product::page_of(u64::MAX), u32::MAX);
    }
}
