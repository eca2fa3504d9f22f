// SPDX-License-Identifier: MIT
// Declarative option parser of the shiftnorm CLI: every option has a help line and a default.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <sstream>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace shiftnorm::cli {

//! A command-line mistake (unknown option, missing or malformed value): printed with a hint.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

//! Options of one subcommand: `--name VALUE` or boolean `--flag`. parse() fills values; --help
//! prints the table and makes parse() return false.
class arg_parser {
public:
    arg_parser(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

    arg_parser& option(const std::string& name, const std::string& value_name, const std::string& def, const std::string& help) {
        // a second declaration would silently keep the first one's range and help: a CLI bug
        for (const auto& sp : specs_)
            if (sp.name == name) throw std::logic_error("arg_parser: option --" + name + " declared twice in '" + command_ + "'");
        specs_.push_back({name, value_name, def, help, false, {}, {}});
        values_[name] = def;
        return *this;
    }
    //! The last option added takes an integer in [lo, hi]; `why` explains the bound in errors.
    arg_parser& int_range(long long lo, long long hi, const std::string& why = "") {
        specs_.back().b = {bound_kind::integer, double(lo), double(hi), lo, hi, why};
        return *this;
    }
    //! The last option added takes a FINITE number in [lo, hi] (every value of a list option).
    arg_parser& num_range(double lo, double hi, const std::string& why = "") {
        specs_.back().b = {bound_kind::number, lo, hi, 0, 0, why};
        return *this;
    }
    //! The last option added takes one of `values` (checked by parse(), before any work).
    arg_parser& one_of(std::vector<std::string> values) {
        specs_.back().choices = std::move(values);
        return *this;
    }
    arg_parser& flag(const std::string& name, const std::string& help) {
        specs_.push_back({name, "", "", help, true, {}, {}});
        return *this;
    }

    bool parse(const std::vector<std::string>& args, std::ostream& out) {
        for (std::size_t i = 0; i < args.size(); ++i) {
            const std::string& a = args[i];
            if (a == "--help" || a == "-h") {
                print_help(out);
                return false;
            }
            if (a.rfind("--", 0) != 0) throw usage_error("unexpected argument '" + a + "' (options start with --)");
            std::string name = a.substr(2), value;
            bool has_value = false;
            if (auto eq = name.find('='); eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
                has_value = true;
            }
            const spec* s = find(name);
            if (!s) throw usage_error("unknown option '--" + name + "' for '" + command_ + "'");
            if (s->is_flag) {
                if (has_value) throw usage_error("option '--" + name + "' takes no value");
                flags_[name] = true;
                continue;
            }
            if (!has_value) {
                if (i + 1 >= args.size()) throw usage_error("option '--" + name + "' needs a value (" + s->value_name + ")");
                value = args[++i];
                // `--out --resume`: the next word is an option, not a value (write --out=--x if meant)
                if (value.rfind("--", 0) == 0 && find(option_name(value)))
                    throw usage_error("option '--" + name + "' needs a value (" + s->value_name + "), got the option '" + value + "'");
            }
            values_[name] = value;
            given_[name] = true;
        }
        for (const auto& s : specs_) check_bound(s);
        return true;
    }

    void print_help(std::ostream& out) const {
        out << "usage: shiftnorm " << command_ << " [options]\n\n" << summary_ << "\n\noptions:\n";
        for (const auto& s : specs_) {
            std::string left = "  --" + s.name + (s.is_flag ? "" : " " + s.value_name);
            out << left << std::string(left.size() < 30 ? 30 - left.size() : 1, ' ') << s.help;
            if (!s.is_flag && !s.def.empty()) out << " [default: " << s.def << "]";
            out << "\n";
        }
        out << "  --help                      show this help\n";
    }

    const std::string& get(const std::string& name) const { return values_.at(name); }
    bool given(const std::string& name) const { return given_.count(name) != 0; }
    bool has(const std::string& name) const { return flags_.count(name) != 0; }
    //! Whether an option (not a flag) named `name` was declared.
    bool declares(const std::string& name) const { return values_.count(name) != 0; }
    //! The integer value; usage_error when malformed or out of the range of long long.
    long long get_int(const std::string& name) const { return parse_int(name, get(name)); }
    double get_double(const std::string& name) const { return parse_double(name, get(name)); }
    std::vector<float> get_floats(const std::string& name) const {
        std::vector<float> out;
        std::string v = get(name), tok;
        std::size_t pos = 0;
        while (pos <= v.size()) {
            const std::size_t c = v.find(',', pos);
            tok = v.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
            char* end = nullptr;
            const double x = std::strtod(tok.c_str(), &end);
            if (tok.empty() || *end != '\0' || !std::isfinite(x))
                throw usage_error("option '--" + name + "' expects comma-separated finite numbers, got '" + v + "'");
            out.push_back(float(x));
            if (c == std::string::npos) break;
            pos = c + 1;
        }
        return out;
    }

private:
    enum class bound_kind { none, integer, number };
    struct bound {
        bound_kind kind = bound_kind::none;
        double lo = 0, hi = 0;
        long long ilo = 0, ihi = 0;
        std::string why;
    };
    struct spec {
        std::string name, value_name, def, help;
        bool is_flag;
        bound b;
        std::vector<std::string> choices;  //!< allowed values (empty: any)
    };
    static std::string option_name(const std::string& arg) {
        std::string n = arg.substr(2);
        return n.substr(0, n.find('='));
    }
    static long long parse_int(const std::string& name, const std::string& v) {
        char* end = nullptr;
        errno = 0;
        const long long x = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0') throw usage_error("option '--" + name + "' expects an integer, got '" + v + "'");
        if (errno == ERANGE) throw usage_error("option '--" + name + "': '" + v + "' is out of range");
        return x;
    }
    static double parse_double(const std::string& name, const std::string& v) {
        char* end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (v.empty() || *end != '\0') throw usage_error("option '--" + name + "' expects a number, got '" + v + "'");
        return x;
    }
    //! Checks the value (given or default) of an option with a declared range.
    void check_bound(const spec& s) const {
        if (!s.choices.empty() && !s.is_flag) {
            const std::string& v = values_.at(s.name);
            bool ok = false;
            std::string list;
            for (const auto& c : s.choices) ok = ok || c == v, list += (list.empty() ? "" : " | ") + c;
            if (!ok) throw usage_error("option '--" + s.name + "' must be one of " + list + ", got '" + v + "'");
        }
        const bound& b = s.b;
        if (b.kind == bound_kind::none || s.is_flag) return;
        const std::string& v = values_.at(s.name);
        if (v.empty()) return;  // "not set" (options whose default is empty)
        auto fail = [&](const std::string& range) {
            throw usage_error("option '--" + s.name + "' must be " + range + (b.why.empty() ? "" : " (" + b.why + ")") +
                              ", got '" + v + "'");
        };
        std::ostringstream r;
        if (b.kind == bound_kind::integer) {
            r << "an integer in [" << b.ilo << ", " << b.ihi << "]";
            const long long x = parse_int(s.name, v);
            if (x < b.ilo || x > b.ihi) fail(r.str());
            return;
        }
        r << "a finite number in [" << b.lo << ", " << b.hi << "]";
        std::stringstream ss(v);
        for (std::string t; std::getline(ss, t, ',');) {
            const double x = parse_double(s.name, t);
            if (!std::isfinite(x) || x < b.lo || x > b.hi) fail(r.str());
        }
    }
    const spec* find(const std::string& n) const {
        for (const auto& s : specs_)
            if (s.name == n) return &s;
        return nullptr;
    }
    std::string command_, summary_;
    std::vector<spec> specs_;
    std::map<std::string, std::string> values_;
    std::map<std::string, bool> flags_, given_;
};

}  // namespace shiftnorm::cli
