#include "store/store_testing.h"

#include <type_traits>

namespace cce::store::testing {

// A pure virtual method added to Store and not forwarded in store_testing.h
// leaves ForwardingStore abstract: say so here, once, rather than in every
// test deriving from it.
static_assert(!std::is_abstract_v<ForwardingStore>,
              "ForwardingStore must forward every method of store::Store (store.h)");

// Out of line: this file holds the class's vtable.
ForwardingStore::~ForwardingStore() = default;

}  // namespace cce::store::testing
