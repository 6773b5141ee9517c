// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/npy.h"

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

namespace gw::data {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& msg) { throw NpyError(what + ": " + msg); }

/// What a dtype string says: its kind ("b1", "i8", "U", "O", ...) and its item size; byte order checked.
void parseDescr(const std::string& descr, const std::string& what, std::string& dtype, int64_t& itemSize) {
    if (descr.size() < 2) fail(what, "expected a NumPy type such as '<f4', found '" + descr + "'");
    const char order = descr[0];
    std::string rest = descr.substr(1);
    if (order == '>') fail(what, "big-endian data ('" + descr + "') is not read; save it little-endian (astype('<...'))");
    if (order != '<' && order != '|' && order != '=')
        fail(what, "expected a NumPy type such as '<f4', found '" + descr + "'");
    const char kind = rest[0];
    if (kind == 'O') {
        dtype = "O";
        itemSize = 8;
        return;
    }
    int64_t n = 0;
    try {
        size_t used = 0;
        n = std::stoll(rest.substr(1), &used);
        if (used + 1 != rest.size()) n = -1;
    } catch (const std::exception&) {
        n = -1;
    }
    if (n <= 0) fail(what, "expected a NumPy type such as '<f4', found '" + descr + "'");
    if (kind == 'U') {
        dtype = "U";
        itemSize = 4 * n;
        return;
    }
    const bool ok = (kind == 'b' && n == 1) || ((kind == 'i' || kind == 'u') && (n == 1 || n == 2 || n == 4 || n == 8)) ||
                    (kind == 'f' && (n == 4 || n == 8));
    if (!ok)
        fail(what, "unsupported NumPy type '" + descr +
                       "' (read: booleans b1, integers i1..i8 and u1..u8, floats f4 and f8, text <U, objects |O)");
    dtype = rest;
    itemSize = n;
}

void appendUtf8(std::string& out, uint32_t c) {
    if (c < 0x80) {
        out += char(c);
    } else if (c < 0x800) {
        out += char(0xC0 | (c >> 6));
        out += char(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += char(0xE0 | (c >> 12));
        out += char(0x80 | ((c >> 6) & 0x3F));
        out += char(0x80 | (c & 0x3F));
    } else {
        out += char(0xF0 | (c >> 18));
        out += char(0x80 | ((c >> 12) & 0x3F));
        out += char(0x80 | ((c >> 6) & 0x3F));
        out += char(0x80 | (c & 0x3F));
    }
}

/// UTF-32LE items of `itemSize` bytes each into UTF-8 strings (NumPy pads with NULs).
std::vector<std::string> utf32Items(const char* p, int64_t count, int64_t itemSize, const std::string& what, int64_t firstIndex = 0) {
    std::vector<std::string> out(static_cast<size_t>(count));
    for (int64_t k = 0; k < count; ++k) {
        std::string& s = out[static_cast<size_t>(k)];
        for (int64_t j = 0; j < itemSize; j += 4) {
            const auto* u = reinterpret_cast<const unsigned char*>(p + k * itemSize + j);
            const uint32_t c = uint32_t(u[0]) | uint32_t(u[1]) << 8 | uint32_t(u[2]) << 16 | uint32_t(u[3]) << 24;
            if (c == 0) break;
            if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
                fail(what, "element " + std::to_string(firstIndex + k) + " holds an invalid character (U+" + std::to_string(c) + ")");
            appendUtf8(s, c);
        }
    }
    return out;
}

int64_t product(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

// ---- The unpickler -------------------------------------------------------------------------------------

/// A value under construction, or one of the few objects a NumPy pickle builds before its value.
struct Obj {
    enum class T { Value, Mark, Global, Dtype, NewArray, Scalar };
    T t = T::Value;
    std::shared_ptr<PyValue> v;  ///< Value and NewArray (its array filled by BUILD)
    std::string name;            ///< Global: "module name"; Dtype: the descr given to numpy.dtype
    char order = '|';            ///< Dtype: the byte order BUILD sets
};
using ObjPtr = std::shared_ptr<Obj>;

ObjPtr value(std::shared_ptr<PyValue> v) {
    auto o = std::make_shared<Obj>();
    o->v = std::move(v);
    return o;
}
ObjPtr make(PyValue::Kind k) {
    auto v = std::make_shared<PyValue>();
    v->kind = k;
    return value(v);
}

class Unpickler {
public:
    Unpickler(const std::string& bytes, std::string what) : b_(bytes), what_(std::move(what)) {}

    PyValuePtr run() {
        while (true) {
            const unsigned char op = u8();
            switch (op) {
                case 0x80: u8(); break;                      // PROTO
                case 0x95: n(8); break;                      // FRAME
                case '.': {                                  // STOP
                    auto top = pop();
                    return finish(top);
                }
                case '(': push(mark()); break;               // MARK
                case 'N': push(make(PyValue::Kind::None)); break;
                case 0x88: case 0x89: {                      // NEWTRUE, NEWFALSE
                    auto o = make(PyValue::Kind::Bool);
                    o->v->b = op == 0x88;
                    push(o);
                    break;
                }
                case 'K': pushInt(u8()); break;              // BININT1
                case 'M': pushInt(int64_t(u8()) | int64_t(u8()) << 8); break;  // BININT2
                case 'J': pushInt(int32_t(uint32_t(le(4)))); break;             // BININT
                case 0x8a: {                                 // LONG1
                    const int len = u8();
                    if (len > 8) fail(what_, "an integer of " + std::to_string(len) + " bytes does not fit 64 bits");
                    uint64_t x = len ? le(len) : 0;
                    if (len && len < 8 && (x >> (8 * len - 1)) & 1) x |= ~uint64_t(0) << (8 * len);  // sign
                    pushInt(int64_t(x));
                    break;
                }
                case 'G': {                                  // BINFLOAT (big-endian double)
                    uint64_t x = 0;
                    for (int k = 0; k < 8; ++k) x = x << 8 | u8();
                    double d;
                    std::memcpy(&d, &x, 8);
                    auto o = make(PyValue::Kind::Float);
                    o->v->f = d;
                    push(o);
                    break;
                }
                case 'X': pushStr(PyValue::Kind::Str, n(le(4))); break;     // BINUNICODE
                case 0x8c: pushStr(PyValue::Kind::Str, n(u8())); break;     // SHORT_BINUNICODE
                case 0x8d: pushStr(PyValue::Kind::Str, n(le(8))); break;    // BINUNICODE8
                case 'C': pushStr(PyValue::Kind::Bytes, n(u8())); break;    // SHORT_BINBYTES
                case 'B': pushStr(PyValue::Kind::Bytes, n(le(4))); break;   // BINBYTES
                case 0x8e: pushStr(PyValue::Kind::Bytes, n(le(8))); break;  // BINBYTES8
                case 'c': {                                  // GLOBAL "module\nname\n"
                    auto o = std::make_shared<Obj>();
                    o->t = Obj::T::Global;
                    o->name = line();
                    o->name += " " + line();
                    push(o);
                    break;
                }
                case 0x93: {                                 // STACK_GLOBAL
                    auto name = pop(), module = pop();
                    auto o = std::make_shared<Obj>();
                    o->t = Obj::T::Global;
                    o->name = text(module) + " " + text(name);
                    push(o);
                    break;
                }
                case ')': push(make(PyValue::Kind::Tuple)); break;  // EMPTY_TUPLE
                case 0x85: case 0x86: case 0x87: {           // TUPLE1..3
                    const int k = op - 0x84;
                    auto t = make(PyValue::Kind::Tuple);
                    std::vector<ObjPtr> items(k);
                    for (int j = k - 1; j >= 0; --j) items[j] = pop();
                    tuples_[t.get()] = items;
                    push(t);
                    break;
                }
                case 't': {                                  // TUPLE
                    auto items = popToMark();
                    auto t = make(PyValue::Kind::Tuple);
                    tuples_[t.get()] = items;
                    push(t);
                    break;
                }
                case ']': push(make(PyValue::Kind::List)); break;   // EMPTY_LIST
                case 'l': {                                  // LIST
                    auto items = popToMark();
                    auto l = make(PyValue::Kind::List);
                    for (auto& x : items) l->v->items.push_back(finish(x));
                    push(l);
                    break;
                }
                case 'a': {                                  // APPEND
                    auto x = pop();
                    expect(top(), PyValue::Kind::List, "APPEND")->items.push_back(finish(x));
                    break;
                }
                case 'e': {                                  // APPENDS
                    auto items = popToMark();
                    auto* l = expect(top(), PyValue::Kind::List, "APPENDS");
                    for (auto& x : items) l->items.push_back(finish(x));
                    break;
                }
                case '}': push(make(PyValue::Kind::Dict)); break;   // EMPTY_DICT
                case 's': {                                  // SETITEM
                    auto val = pop(), key = pop();
                    expect(top(), PyValue::Kind::Dict, "SETITEM")->dict.emplace_back(finish(key), finish(val));
                    break;
                }
                case 'u': {                                  // SETITEMS
                    auto items = popToMark();
                    if (items.size() % 2) fail(what_, "malformed pickle (SETITEMS with an odd count)");
                    auto* d = expect(top(), PyValue::Kind::Dict, "SETITEMS");
                    for (size_t k = 0; k < items.size(); k += 2) d->dict.emplace_back(finish(items[k]), finish(items[k + 1]));
                    break;
                }
                case 0x8f: push(make(PyValue::Kind::Set)); break;   // EMPTY_SET
                case 0x90: {                                 // ADDITEMS
                    auto items = popToMark();
                    auto* s = expect(top(), PyValue::Kind::Set, "ADDITEMS");
                    for (auto& x : items) s->items.push_back(finish(x));
                    break;
                }
                case 0x91: {                                 // FROZENSET
                    auto items = popToMark();
                    auto s = make(PyValue::Kind::Set);
                    for (auto& x : items) s->v->items.push_back(finish(x));
                    push(s);
                    break;
                }
                case 'q': memo(u8()); break;                 // BINPUT
                case 'r': memo(le(4)); break;                // LONG_BINPUT
                case 0x94: memo(memo_.size()); break;        // MEMOIZE
                case 'h': push(recall(u8())); break;         // BINGET
                case 'j': push(recall(le(4))); break;        // LONG_BINGET
                case 'R': {                                  // REDUCE
                    auto args = pop(), fn = pop();
                    push(reduce(fn, tupleItems(args)));
                    break;
                }
                case 0x81: {                                 // NEWOBJ
                    auto args = pop(), cls = pop();
                    push(reduce(cls, tupleItems(args)));
                    break;
                }
                case 'b': {                                  // BUILD
                    auto state = pop();
                    build(top(), state);
                    break;
                }
                default: {
                    std::ostringstream s;
                    s << "unsupported pickle opcode 0x" << std::hex << int(op) << " at byte " << std::dec << (pos_ - 1)
                      << " (read: the data types of NumPy's saved arrays)";
                    fail(what_, s.str());
                }
            }
        }
    }

private:
    const std::string& b_;
    std::string what_;
    size_t pos_ = 0;
    std::vector<ObjPtr> stack_;
    std::vector<ObjPtr> memo_;
    std::map<const Obj*, std::vector<ObjPtr>> tuples_;  ///< a tuple's items, which may be dtypes or globals
    static constexpr int64_t kSmallInts = 256;
    std::array<ObjPtr, kSmallInts> smallInts_;

    unsigned char u8() {
        if (pos_ >= b_.size()) fail(what_, "the pickle ends early, at byte " + std::to_string(pos_));
        return static_cast<unsigned char>(b_[pos_++]);
    }
    uint64_t le(int k) {
        uint64_t x = 0;
        for (int j = 0; j < k; ++j) x |= uint64_t(u8()) << (8 * j);
        return x;
    }
    std::string n(uint64_t len) {
        if (len > b_.size() - pos_) fail(what_, "the pickle ends early: " + std::to_string(len) + " bytes announced at byte " + std::to_string(pos_));
        std::string s = b_.substr(pos_, len);
        pos_ += len;
        return s;
    }
    std::string line() {
        const auto end = b_.find('\n', pos_);
        if (end == std::string::npos) fail(what_, "the pickle ends early (a GLOBAL without its end of line)");
        std::string s = b_.substr(pos_, end - pos_);
        pos_ = end + 1;
        return s;
    }
    void push(ObjPtr o) { stack_.push_back(std::move(o)); }
    ObjPtr pop() {
        if (stack_.empty() || stack_.back()->t == Obj::T::Mark) fail(what_, "malformed pickle (an empty stack at byte " + std::to_string(pos_) + ")");
        auto o = stack_.back();
        stack_.pop_back();
        return o;
    }
    ObjPtr top() {
        if (stack_.empty()) fail(what_, "malformed pickle (an empty stack at byte " + std::to_string(pos_) + ")");
        return stack_.back();
    }
    static ObjPtr mark() {
        auto o = std::make_shared<Obj>();
        o->t = Obj::T::Mark;
        return o;
    }
    std::vector<ObjPtr> popToMark() {
        std::vector<ObjPtr> items;
        while (!stack_.empty() && stack_.back()->t != Obj::T::Mark) {
            items.push_back(stack_.back());
            stack_.pop_back();
        }
        if (stack_.empty()) fail(what_, "malformed pickle (no MARK)");
        stack_.pop_back();
        return {items.rbegin(), items.rend()};
    }
    void memo(uint64_t k) {
        if (k > 1'000'000'000) fail(what_, "malformed pickle (memo index " + std::to_string(k) + ")");
        if (memo_.size() <= k) memo_.resize(k + 1);
        memo_[k] = top();
    }
    ObjPtr recall(uint64_t k) {
        if (k >= memo_.size() || !memo_[k]) fail(what_, "malformed pickle (memo " + std::to_string(k) + " read before it is written)");
        return memo_[k];
    }
    void pushInt(int64_t x) {
        // Small integers are shared (ints are never changed once made): a pickled array of 500,000
        // caption-choice dicts holds some 15 million of them.
        if (x >= 0 && x < kSmallInts) {
            ObjPtr& o = smallInts_[static_cast<size_t>(x)];
            if (!o) {
                o = make(PyValue::Kind::Int);
                o->v->i = x;
            }
            push(o);
            return;
        }
        auto o = make(PyValue::Kind::Int);
        o->v->i = x;
        push(o);
    }
    void pushStr(PyValue::Kind k, std::string s) {
        auto o = make(k);
        o->v->s = std::move(s);
        push(o);
    }
    std::string text(const ObjPtr& o) {
        if (o->t != Obj::T::Value || (o->v->kind != PyValue::Kind::Str && o->v->kind != PyValue::Kind::Bytes))
            fail(what_, "malformed pickle (expected a name)");
        return o->v->s;
    }
    PyValue* expect(const ObjPtr& o, PyValue::Kind k, const char* op) {
        if (o->t != Obj::T::Value || o->v->kind != k) fail(what_, std::string("malformed pickle (") + op + " on a " + describe(o) + ")");
        return o->v.get();
    }
    std::vector<ObjPtr> tupleItems(const ObjPtr& o) {
        if (o->t != Obj::T::Value || o->v->kind != PyValue::Kind::Tuple) fail(what_, "malformed pickle (arguments that are not a tuple)");
        auto it = tuples_.find(o.get());
        return it == tuples_.end() ? std::vector<ObjPtr>{} : it->second;
    }
    std::string describe(const ObjPtr& o) const {
        switch (o->t) {
            case Obj::T::Global: return o->name;
            case Obj::T::Dtype: return "numpy dtype";
            case Obj::T::NewArray: return "numpy array";
            case Obj::T::Mark: return "mark";
            default: return o->v->typeName();
        }
    }
    static bool isNumpy(const std::string& global, const char* name) {
        for (const char* module : {"numpy.core.multiarray ", "numpy._core.multiarray ", "numpy "})
            if (global == std::string(module) + name) return true;
        return false;
    }

    /// A value, tuples included: turns the construction objects into what the caller sees.
    PyValuePtr finish(const ObjPtr& o) {
        if (o->t == Obj::T::Value) {
            if (o->v->kind == PyValue::Kind::Tuple && o->v->items.empty()) {
                auto it = tuples_.find(o.get());
                if (it != tuples_.end())
                    for (auto& x : it->second) o->v->items.push_back(finish(x));
            }
            return o->v;
        }
        if (o->t == Obj::T::NewArray) return o->v;
        fail(what_, "the pickle holds a " + describe(o) + ", which is not data (read: numbers, text, lists, dicts, sets, NumPy arrays)");
    }

    ObjPtr reduce(const ObjPtr& fn, const std::vector<ObjPtr>& args) {
        if (fn->t != Obj::T::Global) fail(what_, "the pickle calls a " + describe(fn) + ", which is not a known constructor");
        const std::string& g = fn->name;
        if (isNumpy(g, "_reconstruct")) {
            auto o = make(PyValue::Kind::Array);
            o->t = Obj::T::NewArray;
            o->v->array = std::make_shared<NpyArray>();
            return o;
        }
        if (isNumpy(g, "dtype")) {
            if (args.empty()) fail(what_, "numpy.dtype without its type");
            auto o = std::make_shared<Obj>();
            o->t = Obj::T::Dtype;
            o->name = text(args[0]);
            return o;
        }
        if (isNumpy(g, "scalar")) {  // numpy.core.multiarray.scalar(dtype, bytes)
            if (args.size() < 2 || args[0]->t != Obj::T::Dtype) fail(what_, "numpy scalar without its dtype");
            std::string dtype;
            int64_t size = 0;
            parseDescr(std::string(1, args[0]->order) + args[0]->name, what_, dtype, size);
            NpyArray a;
            a.dtype = dtype;
            a.itemSize = size;
            const std::string raw = text(args[1]);
            if (int64_t(raw.size()) != size || dtype == "U" || dtype == "O") fail(what_, "a numpy scalar of an unsupported type");
            a.bytes.assign(raw.begin(), raw.end());
            auto o = make(dtype[0] == 'f' ? PyValue::Kind::Float : dtype[0] == 'b' ? PyValue::Kind::Bool : PyValue::Kind::Int);
            if (dtype[0] == 'f') o->v->f = a.number(0);
            else if (dtype[0] == 'b') o->v->b = a.integer(0) != 0;
            else o->v->i = a.integer(0);
            return o;
        }
        if (g == "builtins frozenset" || g == "__builtin__ frozenset" || g == "builtins set" || g == "__builtin__ set") {
            auto s = make(PyValue::Kind::Set);
            if (!args.empty()) {
                auto v = finish(args[0]);
                if (v->kind != PyValue::Kind::List && v->kind != PyValue::Kind::Tuple) fail(what_, "a set made from a " + v->typeName());
                s->v->items = v->items;
            }
            return s;
        }
        fail(what_, "the pickle builds a '" + g + "' object, which is not read (read: numbers, text, lists, dicts, sets, NumPy arrays)");
    }

    void build(const ObjPtr& target, const ObjPtr& stateObj) {
        if (target->t == Obj::T::Dtype) {  // (version, byte order, ...)
            auto st = tupleItems(stateObj);
            if (st.size() >= 2) {
                const std::string order = text(st[1]);
                target->order = order.empty() ? '|' : order[0];
            }
            return;
        }
        if (target->t != Obj::T::NewArray) fail(what_, "the pickle sets the state of a " + describe(target) + ", which is not read");
        // ndarray.__setstate__((version, shape, dtype, is_fortran, data))
        auto st = tupleItems(stateObj);
        if (st.size() != 5) fail(what_, "a NumPy array's state holds " + std::to_string(st.size()) + " items, expected 5");
        NpyArray& a = *target->v->array;
        auto shape = finish(st[1]);
        for (const auto& d : shape->items) {
            if (d->kind != PyValue::Kind::Int || d->i < 0) fail(what_, "a NumPy array's shape is not whole numbers");
            a.shape.push_back(d->i);
        }
        if (st[2]->t != Obj::T::Dtype) fail(what_, "a NumPy array's state without its dtype");
        parseDescr(std::string(1, st[2]->order) + st[2]->name, what_, a.dtype, a.itemSize);
        const auto fortran = finish(st[3]);
        if (fortran->kind == PyValue::Kind::Bool && fortran->b && a.shape.size() > 1)
            fail(what_, "a Fortran-ordered NumPy array is not read; save it with np.ascontiguousarray");
        const auto data = finish(st[4]);
        const int64_t count = product(a.shape);
        if (a.dtype == "O") {
            if (data->kind != PyValue::Kind::List || int64_t(data->items.size()) != count)
                fail(what_, "an object array whose elements are not a list of " + std::to_string(count));
            a.objects = data->items;
            return;
        }
        if (data->kind != PyValue::Kind::Bytes || int64_t(data->s.size()) != count * a.itemSize)
            fail(what_, "a NumPy array of " + std::to_string(count) + " elements of " + std::to_string(a.itemSize) +
                            " bytes, found " + std::to_string(data->kind == PyValue::Kind::Bytes ? data->s.size() : 0) + " bytes");
        if (a.dtype == "U") a.text = utf32Items(data->s.data(), count, a.itemSize, what_);
        else a.bytes.assign(data->s.begin(), data->s.end());
    }
};

}  // namespace

int64_t NpyArray::size() const { return product(shape); }

double NpyArray::number(int64_t i) const {
    if (dtype == "U" || dtype == "O") throw NpyError("element " + std::to_string(i) + " is not a number (dtype " + dtype + ")");
    if (dtype[0] == 'f') {
        if (itemSize == 4) {
            float f;
            std::memcpy(&f, bytes.data() + i * 4, 4);
            return f;
        }
        double d;
        std::memcpy(&d, bytes.data() + i * 8, 8);
        return d;
    }
    return static_cast<double>(integer(i));
}

int64_t NpyArray::integer(int64_t i) const {
    if (dtype.empty() || (dtype[0] != 'i' && dtype[0] != 'u' && dtype[0] != 'b'))
        throw NpyError("element " + std::to_string(i) + " is not an integer (dtype " + dtype + ")");
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + i * itemSize);
    uint64_t x = 0;
    for (int64_t k = 0; k < itemSize; ++k) x |= uint64_t(p[k]) << (8 * k);
    if (dtype[0] == 'i' && itemSize < 8 && (x >> (8 * itemSize - 1)) & 1) x |= ~uint64_t(0) << (8 * itemSize);
    return static_cast<int64_t>(x);
}

std::string PyValue::typeName() const {
    switch (kind) {
        case Kind::None: return "None";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::Float: return "float";
        case Kind::Str: return "str";
        case Kind::Bytes: return "bytes";
        case Kind::List: return "list";
        case Kind::Tuple: return "tuple";
        case Kind::Dict: return "dict";
        case Kind::Set: return "set";
        case Kind::Array: return "numpy array";
    }
    return "?";
}

PyValuePtr PyValue::get(const std::string& k) const {
    for (const auto& [key, v] : dict)
        if (key->kind == Kind::Str && key->s == k) return v;
    return nullptr;
}

PyValuePtr unpickle(const std::string& bytes, const std::string& what) { return Unpickler(bytes, what).run(); }

namespace {

/// What a `.npy` header says, and where the data starts.
struct Header {
    NpyArray shapeAndType;  ///< dtype, itemSize and shape; no data
    size_t dataAt = 0;
};

/// Parses the magic, version and header dict at the start of `head` (at least the first 12 bytes of
/// the file, and the whole header when it is there). \throws NpyError "PATH: ...".
Header parseHeader(const std::string& head, const std::string& path) {
    if (head.size() < 10 || head.compare(0, 6, "\x93NUMPY") != 0)
        fail(path, "expected a NumPy .npy file (starting with \\x93NUMPY), found something else");
    const int major = static_cast<unsigned char>(head[6]);
    size_t headerLen = 0, start = 0;
    if (major == 1) {
        headerLen = static_cast<unsigned char>(head[8]) | size_t(static_cast<unsigned char>(head[9])) << 8;
        start = 10;
    } else if (major == 2 || major == 3) {
        if (head.size() < 12) fail(path, "the header is cut short");
        for (int k = 0; k < 4; ++k) headerLen |= size_t(static_cast<unsigned char>(head[8 + k])) << (8 * k);
        start = 12;
    } else {
        fail(path, "expected .npy format version 1, 2 or 3, found " + std::to_string(major));
    }
    if (start + headerLen > head.size()) fail(path, "the header is cut short");
    const std::string header = head.substr(start, headerLen);
    // {'descr': '<f4', 'fortran_order': False, 'shape': (2, 12), }
    auto valueOf = [&](const std::string& key) {
        const auto at = header.find("'" + key + "'");
        if (at == std::string::npos) fail(path, "the header has no '" + key + "' (found " + header + ")");
        const auto colon = header.find(':', at);
        if (colon == std::string::npos) fail(path, "malformed header " + header);
        return colon + 1;
    };
    size_t p = header.find_first_not_of(' ', valueOf("descr"));
    if (p == std::string::npos || header[p] != '\'')
        fail(path, "only plain types are read; found a structured type in the header " + header);
    const std::string descr = header.substr(p + 1, header.find('\'', p + 1) - p - 1);
    p = header.find_first_not_of(' ', valueOf("fortran_order"));
    const bool fortran = header.compare(p, 4, "True") == 0;
    p = header.find('(', valueOf("shape"));
    const auto close = header.find(')', p);
    if (p == std::string::npos || close == std::string::npos) fail(path, "malformed shape in the header " + header);
    Header h;
    NpyArray& a = h.shapeAndType;
    std::stringstream dims(header.substr(p + 1, close - p - 1));
    std::string part;
    while (std::getline(dims, part, ',')) {
        if (part.find_first_not_of(" L") == std::string::npos) continue;
        try {
            a.shape.push_back(std::stoll(part));
        } catch (const std::exception&) {
            fail(path, "malformed shape in the header " + header);
        }
        if (a.shape.back() < 0) fail(path, "malformed shape in the header " + header);
    }
    parseDescr(descr, path, a.dtype, a.itemSize);
    if (fortran && a.shape.size() > 1) fail(path, "Fortran-ordered data is not read; save it with np.ascontiguousarray");
    h.dataAt = start + headerLen;
    return h;
}

}  // namespace

NpyArray readNpy(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw NpyError(path + ": cannot read the file (" + std::strerror(errno) + ")");
    const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Header h = parseHeader(all, path);
    NpyArray a = std::move(h.shapeAndType);
    const size_t dataAt = h.dataAt;
    const int64_t count = a.size();
    if (a.dtype == "O") {
        auto v = unpickle(all.substr(dataAt), path);
        if (v->kind != PyValue::Kind::Array) fail(path, "the object array's pickle holds a " + v->typeName());
        NpyArray inner = *v->array;
        if (inner.shape != a.shape) fail(path, "the object array's pickle has another shape than its header");
        return inner;
    }
    if (all.size() - dataAt < size_t(count * a.itemSize))
        fail(path, "expected " + std::to_string(count * a.itemSize) + " bytes of data, found " + std::to_string(all.size() - dataAt));
    if (a.dtype == "U") a.text = utf32Items(all.data() + dataAt, count, a.itemSize, path);
    else a.bytes.assign(all.begin() + static_cast<std::ptrdiff_t>(dataAt), all.begin() + static_cast<std::ptrdiff_t>(dataAt + count * a.itemSize));
    return a;
}

NpyRowReader::NpyRowReader(const std::string& path) : path_(path) {
    in_ = std::make_unique<std::ifstream>(path, std::ios::binary);
    if (!*in_) throw NpyError(path + ": cannot read the file (" + std::strerror(errno) + ")");
    std::string head(12, '\0');
    in_->read(head.data(), 12);
    head.resize(static_cast<size_t>(in_->gcount()));
    if (head.size() >= 12 && head.compare(0, 6, "\x93NUMPY") == 0) {
        // The header's length, then the header itself.
        const int major = static_cast<unsigned char>(head[6]);
        const size_t len = major == 1 ? (static_cast<unsigned char>(head[8]) | size_t(static_cast<unsigned char>(head[9])) << 8) + 10
                                      : (size_t(static_cast<unsigned char>(head[8])) | size_t(static_cast<unsigned char>(head[9])) << 8 |
                                         size_t(static_cast<unsigned char>(head[10])) << 16 | size_t(static_cast<unsigned char>(head[11])) << 24) + 12;
        if (len > 12 && len < (size_t(1) << 30)) {
            head.resize(len);
            in_->read(head.data() + 12, static_cast<std::streamsize>(len - 12));
            head.resize(12 + static_cast<size_t>(in_->gcount()));
        }
    }
    Header h = parseHeader(head, path);
    if (h.shapeAndType.dtype == "O")
        fail(path, "holds Python objects (dtype |O), which are read whole (readNpy), not row by row");
    if (h.shapeAndType.shape.empty()) fail(path, "expected an array with rows, found a single value (shape ())");
    dtype_ = h.shapeAndType.dtype;
    itemSize_ = h.shapeAndType.itemSize;
    shape_ = h.shapeAndType.shape;
    dataAt_ = h.dataAt;
    rowElements_ = 1;
    for (size_t k = 1; k < shape_.size(); ++k) rowElements_ *= shape_[k];
    in_->clear();
    in_->seekg(0, std::ios::end);
    const auto size = static_cast<int64_t>(in_->tellg());
    const int64_t need = shape_[0] * rowElements_ * itemSize_;
    if (size - static_cast<int64_t>(dataAt_) < need)
        fail(path, "expected " + std::to_string(need) + " bytes of data, found " + std::to_string(size - static_cast<int64_t>(dataAt_)));
}

NpyRowReader::~NpyRowReader() = default;

NpyArray NpyRowReader::read(int64_t start, int64_t count) {
    if (start < 0 || count < 0 || start + count > rows())
        fail(path_, "rows " + std::to_string(start) + " to " + std::to_string(start + count) + " are outside its " +
                        std::to_string(rows()) + " rows");
    NpyArray a;
    a.dtype = dtype_;
    a.itemSize = itemSize_;
    a.shape = shape_;
    a.shape[0] = count;
    const int64_t n = count * rowElements_ * itemSize_;
    std::string buf(static_cast<size_t>(n), '\0');
    in_->clear();
    in_->seekg(static_cast<std::streamoff>(dataAt_ + static_cast<size_t>(start * rowElements_ * itemSize_)));
    in_->read(buf.data(), static_cast<std::streamsize>(n));
    if (in_->gcount() != n) fail(path_, "cannot read rows " + std::to_string(start) + " to " + std::to_string(start + count) + " (the file ends early)");
    if (dtype_ == "U") a.text = utf32Items(buf.data(), count * rowElements_, itemSize_, path_, start * rowElements_);
    else a.bytes.assign(buf.begin(), buf.end());
    return a;
}

}  // namespace gw::data
