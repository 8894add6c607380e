//! Single-flight: the table of loads in flight that a [`Cache`](crate::Cache) and its clones
//! share, so that of all the tasks asking for one key at once one leads (reads and loads)
//! and the others wait for its outcome.

use std::any::{Any, TypeId};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

/// Loads in flight, by memcached key and loader error type.
#[derive(Default)]
pub(crate) struct Flights {
    table: Mutex<HashMap<FlightKey, Flight>>,
    next_id: AtomicU64,
}

/// A load in flight is identified by its memcached key and the loader's error type (which
/// fixes the type of the outcome the waiting tasks receive).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct FlightKey {
    key: String,
    error_type: TypeId,
}

impl FlightKey {
    /// The flight of the loads of memcached key `key` whose loaders fail with `E`.
    pub(crate) fn new<E: 'static>(key: String) -> Self {
        FlightKey {
            key,
            error_type: TypeId::of::<E>(),
        }
    }

    /// The memcached key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

struct Flight {
    /// Which lead this is, so that a finished lead never removes its successor.
    id: u64,
    /// A `watch::Receiver<Option<V>>`: `None` until the leader is done.
    done: Box<dyn Any + Send + Sync>,
}

/// What a task that joins a flight does.
pub(crate) enum Role<'a, V> {
    /// Nobody was loading the key: this task reads and loads, then hands out the outcome.
    Lead(Lead<'a, V>),
    /// Another task leads: wait for the outcome it sends (`None` until it is done; the
    /// channel closes without one if the leader is cancelled).
    Follow(watch::Receiver<Option<V>>),
    /// The flight's outcome is of another type (cannot happen): load alone.
    Alone,
}

impl Flights {
    fn lock(&self) -> MutexGuard<'_, HashMap<FlightKey, Flight>> {
        // The map is consistent whenever the lock is released: a panic elsewhere while it
        // was held leaves nothing half-done.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leads the load of `key` when none is in flight, else follows the one that is.
    pub(crate) fn join<V>(&self, key: &FlightKey) -> Role<'_, V>
    where
        V: Send + Sync + 'static,
    {
        let mut table = self.lock();
        match table.entry(key.clone()) {
            Entry::Occupied(entry) => {
                match entry
                    .get()
                    .done
                    .downcast_ref::<watch::Receiver<Option<V>>>()
                {
                    Some(done) => Role::Follow(done.clone()),
                    // Cannot happen: the key includes the error type, which fixes `V`.
                    None => Role::Alone,
                }
            }
            Entry::Vacant(entry) => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let (sender, done) = watch::channel(None);
                entry.insert(Flight {
                    id,
                    done: Box::new(done),
                });
                Role::Lead(Lead {
                    flights: self,
                    key: key.clone(),
                    id,
                    sender,
                })
            }
        }
    }
}

/// The leader's hold on a flight. Dropping it (finished or cancelled) removes the flight,
/// and waiting tasks that got no outcome start over.
pub(crate) struct Lead<'a, V> {
    flights: &'a Flights,
    key: FlightKey,
    id: u64,
    sender: watch::Sender<Option<V>>,
}

impl<V: Clone> Lead<'_, V> {
    /// Ends the flight and hands `outcome` to every task waiting on it.
    pub(crate) fn finish(self, outcome: &V) {
        self.remove();
        // Nobody can join any more: the receivers counted now are all the waiters.
        if self.sender.receiver_count() > 0 {
            self.sender.send_replace(Some(outcome.clone()));
        }
    }
}

impl<V> Lead<'_, V> {
    fn remove(&self) {
        let mut table = self.flights.lock();
        if table.get(&self.key).is_some_and(|f| f.id == self.id) {
            table.remove(&self.key);
        }
    }
}

impl<V> Drop for Lead<'_, V> {
    fn drop(&mut self) {
        self.remove();
    }
}
