// SPDX-License-Identifier: MIT
// Exception hierarchy: every message names the argument, the expected and the actual value.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace shiftnorm {

//! Base class of every exception shiftnorm throws.
class error : public std::runtime_error {
public:
    explicit error(const std::string& what) : std::runtime_error(what) {}
};

//! A tensor or argument has the wrong shape (rank, size, channel count, empty tensor).
class shape_error : public error {
public:
    using error::error;
};

//! An argument's value is outside its domain (negative eps, momentum > 1, unknown name ...).
class value_error : public error {
public:
    using error::error;
};

//! Non-finite values met under a policy that forbids them (see nan_policy).
class numeric_error : public error {
public:
    using error::error;
};

//! A file is missing, truncated or malformed.
class io_error : public error {
public:
    using error::error;
};

//! An operation was called in the wrong state (backward before forward, frozen source ...).
class state_error : public error {
public:
    using error::error;
};

namespace detail {

template <class... Ts>
std::string concat(const Ts&... parts) {
    std::ostringstream os;
    (os << ... << parts);
    return os.str();
}

//! Builds "<where>: argument '<arg>' expected <expected>, got <actual>".
template <class E, class A>
std::string describe(const char* where, const char* arg, const E& expected, const A& actual) {
    return concat(where, ": argument '", arg, "' expected ", expected, ", got ", actual);
}

template <class Error = value_error, class E, class A>
[[noreturn]] void fail(const char* where, const char* arg, const E& expected, const A& actual) {
    throw Error(describe(where, arg, expected, actual));
}

}  // namespace detail

//! The parts streamed into one string (messages of errors and tools): concat("K=", 32).
using detail::concat;
}  // namespace shiftnorm
