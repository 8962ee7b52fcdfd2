// What the org.m_o_a_t.bms objects share: their errors, argument checks and
// the conversion of the controller's configuration to D-Bus values.
#pragma once

#include <string>

#include <moat/dbus.hpp>
#include <moat/value.hpp>

#include "msgpack.hpp"

namespace moat::bms {

/// org.m_o_a_t.bms.Error.<kind> with `message`.
DBusError bms_error(const char* kind, const std::string& message);

/// A finite number argument, else InvalidArgument.
double finite_argument(const Value& v, const char* what);

/// The controller's configuration as D-Bus values: maps as a{sv}, lists as av.
Value config_value(const msgpack::Value& m);

} // namespace moat::bms
