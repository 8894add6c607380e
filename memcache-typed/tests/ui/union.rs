use memcache_typed::Cacheable;

#[derive(Cacheable)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
