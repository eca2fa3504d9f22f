// SPDX-License-Identifier: MIT
// The one JSON string escaper (safetensors headers, result files).
#pragma once

#include <cstdio>
#include <string>

namespace shiftnorm::data {

//! Escapes a string for the inside of a JSON string literal: quote and backslash, the short
//! escapes \n \r \t \b \f, other control characters as \u00XX; UTF-8 bytes pass unchanged.
inline std::string json_escape(const std::string& s) {
    std::string o;
    o.reserve(s.size() + 2);
    for (const char ch : s) {
        const unsigned char c = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"': o += "\\\""; break;
            case '\\': o += "\\\\"; break;
            case '\n': o += "\\n"; break;
            case '\r': o += "\\r"; break;
            case '\t': o += "\\t"; break;
            case '\b': o += "\\b"; break;
            case '\f': o += "\\f"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    o += buf;
                } else {
                    o += ch;
                }
        }
    }
    return o;
}

//! `s` as a quoted JSON string literal.
inline std::string json_string(const std::string& s) { return '"' + json_escape(s) + '"'; }

}  // namespace shiftnorm::data
