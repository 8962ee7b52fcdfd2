// Forward declarations of the sdbus-c++ classes that the library keeps in
// private members. A plugin never uses them and needs no sdbus-c++ header:
// D-Bus reaches plugins as moat::Value, moat::DBusError and moat/dbus.hpp.
#pragma once

namespace sdbus {
class IConnection;
class IObject;
class IProxy;
class Message;
class MethodCall;
class MethodReply;
class Variant;
class Error;
} // namespace sdbus
