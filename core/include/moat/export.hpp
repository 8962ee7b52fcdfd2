// What libmoat exports. The library is built with hidden visibility: only
// the declarations of the public headers marked MOAT_API are part of its ABI.
#pragma once

#define MOAT_API __attribute__((visibility("default")))
