// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/io/torch_file.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

namespace gw {
namespace fs = std::filesystem;

namespace {

/// A value of the pickle being read. Only what state dicts and Lightning checkpoints hold is
/// represented; everything else is Opaque with the name of its class.
struct PyValue;
using PyPtr = std::shared_ptr<PyValue>;
struct PyValue {
    enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Opaque, Storage, Tensor, Mark } kind = None;
    int64_t i = 0;
    double f = 0;
    std::string s;                                // Str, Global and Opaque: the class name, Storage: its key
    std::vector<PyPtr> items;                     // Tuple, List
    std::vector<std::pair<PyPtr, PyPtr>> dict;    // Dict
    torch::Tensor tensor;                         // Tensor, Storage (1-D, the storage's dtype)
};

PyPtr make(PyValue::Kind k) {
    auto v = std::make_shared<PyValue>();
    v->kind = k;
    return v;
}

std::string describe(const PyValue& v) {
    switch (v.kind) {
        case PyValue::None: return "None";
        case PyValue::Bool: return "a bool";
        case PyValue::Int: return "an int";
        case PyValue::Float: return "a float";
        case PyValue::Str: return "a string";
        case PyValue::Tuple: return "a tuple";
        case PyValue::List: return "a list";
        case PyValue::Dict: return "a dict";
        case PyValue::Global: return "the class " + v.s;
        case PyValue::Opaque: return "an object of class " + v.s;
        case PyValue::Storage: return "a storage";
        case PyValue::Tensor: return "a tensor";
        case PyValue::Mark: return "a mark";
    }
    return "?";
}

c10::ScalarType storageDtype(const std::string& cls) {
    static const std::map<std::string, c10::ScalarType> types = {
        {"torch.FloatStorage", c10::kFloat},   {"torch.DoubleStorage", c10::kDouble},
        {"torch.HalfStorage", c10::kHalf},     {"torch.BFloat16Storage", c10::kBFloat16},
        {"torch.LongStorage", c10::kLong},     {"torch.IntStorage", c10::kInt},
        {"torch.ShortStorage", c10::kShort},   {"torch.CharStorage", c10::kChar},
        {"torch.ByteStorage", c10::kByte},     {"torch.BoolStorage", c10::kBool},
    };
    auto it = types.find(cls);
    if (it == types.end()) throw std::invalid_argument("unsupported storage type " + cls);
    return it->second;
}

/// Protocol 2 to 5 pickles as torch.save and torch::pickle_save write them. Every read is bounds
/// checked; errors are std::invalid_argument with the byte offset.
class Unpickler {
public:
    Unpickler(const char* data, size_t size, std::function<torch::Tensor(const std::string&, c10::ScalarType, int64_t)> storage)
        : p_(data), n_(size), storage_(std::move(storage)) {}

    PyPtr run() {
        while (true) {
            const size_t at = pos_;
            const uint8_t op = u8();
            switch (op) {
                case 0x80: u8(); break;                                   // PROTO
                case 0x95: take(8); break;                                // FRAME
                case '.': {                                               // STOP
                    if (stack_.size() != 1) fail(at, "the pickle ends with " + std::to_string(stack_.size()) + " values");
                    return stack_.back();
                }
                case '(': push(make(PyValue::Mark)); break;
                case '}': push(make(PyValue::Dict)); break;
                case ']': push(make(PyValue::List)); break;
                case ')': push(make(PyValue::Tuple)); break;
                case 'N': push(make(PyValue::None)); break;
                case 0x88: case 0x89: { auto v = make(PyValue::Bool); v->i = op == 0x88; push(v); break; }
                case 'K': pushInt(u8()); break;
                case 'M': pushInt(le(2)); break;
                case 'J': pushInt(static_cast<int32_t>(le(4))); break;
                case 0x8a: {                                              // LONG1
                    const size_t len = u8();
                    if (len > 8) fail(at, "an integer of " + std::to_string(len) + " bytes");
                    const char* b = take(len);
                    uint64_t x = 0;
                    for (size_t k = 0; k < len; ++k) x |= uint64_t(uint8_t(b[k])) << (8 * k);
                    if (len > 0 && len < 8 && (uint8_t(b[len - 1]) & 0x80)) x |= ~uint64_t(0) << (8 * len);
                    pushInt(static_cast<int64_t>(x));
                    break;
                }
                case 'G': {                                               // BINFLOAT, big-endian
                    const char* b = take(8);
                    uint64_t x = 0;
                    for (int k = 0; k < 8; ++k) x = (x << 8) | uint8_t(b[k]);
                    auto v = make(PyValue::Float);
                    std::memcpy(&v->f, &x, 8);
                    push(v);
                    break;
                }
                case 'X': pushStr(le(4)); break;                          // BINUNICODE
                case 0x8c: case 'U': case 'C': pushStr(u8()); break;      // SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES
                case 'T': case 'B': pushStr(le(4)); break;                // BINSTRING, BINBYTES
                case 'q': memo(u8()); break;                              // BINPUT
                case 'r': memo(le(4)); break;                             // LONG_BINPUT
                case 0x94: memo(memo_.size()); break;                     // MEMOIZE
                case 'h': get(at, u8()); break;                           // BINGET
                case 'j': get(at, le(4)); break;                          // LONG_BINGET
                case 't': { auto v = make(PyValue::Tuple); v->items = popMark(at); push(v); break; }
                case 0x85: case 0x86: case 0x87: {                        // TUPLE1..3
                    auto v = make(PyValue::Tuple);
                    v->items.resize(op - 0x84);
                    for (size_t k = v->items.size(); k-- > 0;) v->items[k] = pop(at);
                    push(v);
                    break;
                }
                case 'c': {                                               // GLOBAL module\nname\n
                    const std::string module = line(at), name = line(at);
                    pushGlobal(module + "." + name);
                    break;
                }
                case 0x93: {                                              // STACK_GLOBAL
                    auto name = pop(at), module = pop(at);
                    if (name->kind != PyValue::Str || module->kind != PyValue::Str) fail(at, "STACK_GLOBAL without names");
                    pushGlobal(module->s + "." + name->s);
                    break;
                }
                case 'Q': push(persistent(at, pop(at))); break;           // BINPERSID
                case 'R': {                                               // REDUCE
                    auto args = pop(at), fn = pop(at);
                    push(reduce(at, *fn, *args));
                    break;
                }
                case 0x81: {                                              // NEWOBJ cls args
                    pop(at);
                    auto cls = pop(at);
                    auto v = make(PyValue::Opaque);
                    v->s = cls->kind == PyValue::Global ? cls->s : describe(*cls);
                    push(v);
                    break;
                }
                case 'b': pop(at); top(at); break;                        // BUILD: state is not needed
                case 's': {                                               // SETITEM
                    auto value = pop(at), key = pop(at);
                    addItems(at, *top(at), {key, value});
                    break;
                }
                case 'u': {                                               // SETITEMS
                    auto items = popMark(at);
                    if (items.size() % 2) fail(at, "SETITEMS with an odd number of values");
                    addItems(at, *top(at), items);
                    break;
                }
                case 'a': {                                               // APPEND
                    auto v = pop(at);
                    append(at, *top(at), {v});
                    break;
                }
                case 'e': {                                               // APPENDS
                    auto items = popMark(at);
                    append(at, *top(at), items);
                    break;
                }
                default: {
                    char hex[8];
                    std::snprintf(hex, sizeof hex, "0x%02x", op);
                    fail(at, std::string("unsupported pickle opcode ") + hex);
                }
            }
        }
    }

private:
    [[noreturn]] void fail(size_t at, const std::string& what) const {
        throw std::invalid_argument("data.pkl, byte " + std::to_string(at) + ": " + what);
    }
    const char* take(size_t k) {
        if (k > n_ - pos_) fail(pos_, "the pickle ends early (wanted " + std::to_string(k) + " more bytes)");
        const char* b = p_ + pos_;
        pos_ += k;
        return b;
    }
    uint8_t u8() { return uint8_t(*take(1)); }
    uint64_t le(size_t k) {
        const char* b = take(k);
        uint64_t x = 0;
        for (size_t j = 0; j < k; ++j) x |= uint64_t(uint8_t(b[j])) << (8 * j);
        return x;
    }
    std::string line(size_t at) {
        const void* nl = std::memchr(p_ + pos_, '\n', n_ - pos_);
        if (!nl) fail(at, "GLOBAL without an end of line");
        const size_t len = static_cast<const char*>(nl) - (p_ + pos_);
        std::string s(p_ + pos_, len);
        pos_ += len + 1;
        return s;
    }
    void push(PyPtr v) { stack_.push_back(std::move(v)); }
    void pushInt(int64_t x) { auto v = make(PyValue::Int); v->i = x; push(v); }
    void pushStr(uint64_t len) { auto v = make(PyValue::Str); v->s.assign(take(len), len); push(v); }
    void pushGlobal(const std::string& name) { auto v = make(PyValue::Global); v->s = name; push(v); }
    PyPtr pop(size_t at) {
        if (stack_.empty() || stack_.back()->kind == PyValue::Mark) fail(at, "the pickle's stack is empty");
        auto v = std::move(stack_.back());
        stack_.pop_back();
        return v;
    }
    PyPtr top(size_t at) {
        if (stack_.empty()) fail(at, "the pickle's stack is empty");
        return stack_.back();
    }
    std::vector<PyPtr> popMark(size_t at) {
        size_t k = stack_.size();
        while (k > 0 && stack_[k - 1]->kind != PyValue::Mark) --k;
        if (k == 0) fail(at, "no MARK on the pickle's stack");
        std::vector<PyPtr> items(stack_.begin() + k, stack_.end());
        stack_.resize(k - 1);
        return items;
    }
    void memo(uint64_t k) {
        if (stack_.empty()) fail(pos_, "memoising an empty stack");
        if (k > (1u << 26)) fail(pos_, "memo index " + std::to_string(k) + " is implausible");
        if (memo_.size() <= k) memo_.resize(k + 1);
        memo_[k] = stack_.back();
    }
    void get(size_t at, uint64_t k) {
        if (k >= memo_.size() || !memo_[k]) fail(at, "memo index " + std::to_string(k) + " was never set");
        push(memo_[k]);
    }
    void addItems(size_t at, PyValue& d, const std::vector<PyPtr>& items) {
        if (d.kind == PyValue::Opaque) return;
        if (d.kind != PyValue::Dict) fail(at, "setting items on " + describe(d));
        for (size_t k = 0; k + 1 < items.size(); k += 2) d.dict.emplace_back(items[k], items[k + 1]);
    }
    void append(size_t at, PyValue& l, const std::vector<PyPtr>& items) {
        if (l.kind == PyValue::Opaque) return;
        if (l.kind != PyValue::List) fail(at, "appending to " + describe(l));
        l.items.insert(l.items.end(), items.begin(), items.end());
    }

    /// ('storage', storage class, key, location, numel)
    PyPtr persistent(size_t at, const PyPtr& pid) {
        if (pid->kind != PyValue::Tuple || pid->items.size() < 5 || pid->items[0]->kind != PyValue::Str ||
            pid->items[0]->s != "storage" || pid->items[1]->kind != PyValue::Global ||
            pid->items[2]->kind != PyValue::Str || pid->items[4]->kind != PyValue::Int)
            fail(at, "a persistent id that is not a storage");
        const std::string& key = pid->items[2]->s;
        auto it = storages_.find(key);
        if (it != storages_.end()) return it->second;
        c10::ScalarType dtype;
        try {
            dtype = storageDtype(pid->items[1]->s);
        } catch (const std::invalid_argument& e) {
            fail(at, e.what());
        }
        auto v = make(PyValue::Storage);
        v->s = key;
        v->tensor = storage_(key, dtype, pid->items[4]->i);
        storages_[key] = v;
        return v;
    }

    static bool isInt(const PyValue& v) { return v.kind == PyValue::Int; }
    std::vector<int64_t> ints(size_t at, const PyValue& t, const char* what) {
        if (t.kind != PyValue::Tuple) fail(at, std::string(what) + ": expected a tuple, found " + describe(t));
        std::vector<int64_t> r;
        for (const auto& x : t.items) {
            if (!isInt(*x) || x->i < 0) fail(at, std::string(what) + ": expected non-negative integers");
            r.push_back(x->i);
        }
        return r;
    }

    PyPtr reduce(size_t at, const PyValue& fn, const PyValue& args) {
        if (fn.kind != PyValue::Global) {
            auto v = make(PyValue::Opaque);
            v->s = describe(fn);
            return v;
        }
        if (fn.s == "collections.OrderedDict") {
            auto d = make(PyValue::Dict);
            if (args.kind == PyValue::Tuple && !args.items.empty() && args.items[0]->kind == PyValue::List)
                for (const auto& pair : args.items[0]->items)
                    if (pair->kind == PyValue::Tuple && pair->items.size() == 2) d->dict.emplace_back(pair->items[0], pair->items[1]);
            return d;
        }
        if (fn.s == "torch._utils._rebuild_tensor_v2" || fn.s == "torch._utils._rebuild_tensor") {
            if (args.kind != PyValue::Tuple || args.items.size() < 4 || args.items[0]->kind != PyValue::Storage ||
                !isInt(*args.items[1]))
                fail(at, fn.s + " with unexpected arguments");
            const auto& storage = args.items[0]->tensor;
            const int64_t offset = args.items[1]->i;
            const auto size = ints(at, *args.items[2], "tensor size");
            const auto stride = ints(at, *args.items[3], "tensor stride");
            if (size.size() != stride.size()) fail(at, "a tensor whose size and stride differ in length");
            int64_t last = offset, numel = 1;
            for (size_t k = 0; k < size.size(); ++k) {
                if (size[k] > (int64_t(1) << 40) || stride[k] > (int64_t(1) << 40)) fail(at, "an implausible tensor size");
                numel *= size[k];
                if (numel > (int64_t(1) << 40)) fail(at, "an implausible tensor size");
                if (size[k] > 0) last += (size[k] - 1) * stride[k];
            }
            if (offset < 0 || (numel > 0 && last >= storage.numel()))
                fail(at, "a tensor of size " + c10::str(c10::IntArrayRef(size)) + " past the end of its storage (" +
                             std::to_string(storage.numel()) + " elements)");
            auto v = make(PyValue::Tensor);
            v->tensor = numel == 0 ? torch::empty(size, storage.options())
                                   : storage.as_strided(size, stride, offset).clone();
            return v;
        }
        if (fn.s == "torch.jit._pickle.restore_type_tag") {  // torch::pickle_save's typed containers
            if (args.kind == PyValue::Tuple && !args.items.empty()) return args.items[0];
            fail(at, fn.s + " without a value");
        }
        if (fn.s == "torch._utils._rebuild_parameter" || fn.s == "torch._utils._rebuild_parameter_with_state") {
            if (args.kind == PyValue::Tuple && !args.items.empty() && args.items[0]->kind == PyValue::Tensor)
                return args.items[0];
            fail(at, fn.s + " without a tensor");
        }
        auto v = make(PyValue::Opaque);
        v->s = fn.s;
        return v;
    }

    const char* p_;
    size_t n_, pos_ = 0;
    std::function<torch::Tensor(const std::string&, c10::ScalarType, int64_t)> storage_;
    std::vector<PyPtr> stack_, memo_;
    std::map<std::string, PyPtr> storages_;
};

std::string firstLine(const std::string& s) { return s.substr(0, std::min(s.find('\n'), size_t(300))); }

}  // namespace

StateDictFile readStateDict(const std::string& path) {
    if (!fs::exists(path)) throw CheckpointError(path + ": no such file");
    char magic[4] = {0, 0, 0, 0};
    {
        std::ifstream f(path, std::ios::binary);
        f.read(magic, 4);
    }
    if (std::memcmp(magic, "PK\x03\x04", 4) != 0) {
        if (uint8_t(magic[0]) == 0x80 && magic[1] == 2)
            throw CheckpointError(path + ": a legacy torch.save file (written with _use_new_zipfile_serialization=False); "
                                         "expected the zip format of PyTorch 1.6 or later: load and save it again in Python");
        throw CheckpointError(path + ": not a torch.save file (expected a zip archive, found other bytes)");
    }
    checkRecords(path, "torch.save file");
    StateDictFile out;
    try {
        caffe2::serialize::PyTorchStreamReader zip(path);
        if (zip.hasRecord("constants.pkl") || zip.hasRecord("code/__torch__.py") || !zip.hasRecord("data.pkl")) {
            throw CheckpointError(path + ": a TorchScript or GW Studio archive, not a torch.save dictionary (expected "
                                         "the file of torch.save(state_dict, path); for a GW Studio checkpoint use gw export)");
        }
        if (zip.hasRecord("byteorder")) {
            auto [bytes, n] = zip.getRecord("byteorder");
            const std::string order(static_cast<const char*>(bytes.get()), n);
            if (order != "little") throw CheckpointError(path + ": byteorder: expected little, found " + order);
        }
        auto [pkl, size] = zip.getRecord("data.pkl");
        auto loadStorage = [&](const std::string& key, c10::ScalarType dtype, int64_t numel) {
            const std::string record = "data/" + key;
            if (!zip.hasRecord(record)) throw std::invalid_argument("storage record " + record + " is missing");
            auto [data, bytes] = zip.getRecord(record);
            const size_t need = size_t(numel) * c10::elementSize(dtype);
            if (numel < 0 || bytes < need)
                throw std::invalid_argument("storage record " + record + ": expected " + std::to_string(need) +
                                            " bytes, found " + std::to_string(bytes));
            auto t = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
            if (need) std::memcpy(t.data_ptr(), data.get(), need);
            return t;
        };
        Unpickler u(static_cast<const char*>(pkl.get()), size, loadStorage);
        PyPtr root = u.run();
        const PyValue* dict = root.get();
        if (dict->kind == PyValue::Dict) {
            const PyValue* top = dict;
            for (const auto& [k, v] : top->dict) {
                if (k->kind != PyValue::Str) continue;
                if (k->s == "state_dict" && v->kind == PyValue::Dict) {
                    dict = v.get();
                    out.foundAt = "state_dict";
                } else if (k->s == "_migrate-ckpt-migrations" && (v->kind == PyValue::List || v->kind == PyValue::Tuple)) {
                    out.migrationsRecorded = true;
                    for (const auto& item : v->items)
                        if (item->kind == PyValue::Str) out.migrations.push_back(item->s);
                }
            }
        }
        if (dict->kind != PyValue::Dict)
            throw CheckpointError(path + ": expected a dictionary of tensors (a state_dict), found " + describe(*dict));
        for (const auto& [k, v] : dict->dict) {
            if (k->kind != PyValue::Str)
                throw CheckpointError(path + ": expected tensor names (strings) as keys, found " + describe(*k));
            if (v->kind != PyValue::Tensor)
                throw CheckpointError(path + (out.foundAt.empty() ? "" : ", state_dict") + ": entry '" + k->s +
                                      "': expected a tensor, found " + describe(*v));
            out.tensors.set(k->s, v->tensor);
        }
        if (out.tensors.empty()) throw CheckpointError(path + ": the dictionary holds no tensors");
    } catch (const CheckpointError&) {
        throw;
    } catch (const std::exception& e) {
        throw CheckpointError(path + ": damaged torch.save file (" + firstLine(e.what()) + ")");
    }
    return out;
}

void writeStateDict(const std::string& path, const OrderedMap<torch::Tensor>& tensors) {
    c10::impl::GenericDict d(c10::StringType::get(), c10::TensorType::get());
    for (const auto& [k, t] : tensors) d.insert(k, t.detach().cpu().contiguous());
    // As torch::pickle_save, but without its type tags (torch.jit._pickle.restore_type_tag), which
    // Python's torch.load(weights_only=True), the default since PyTorch 2.6, refuses.
    std::vector<char> bytes;
    try {
        std::string pkl;
        torch::jit::Pickler pickler([&](const char* b, size_t n) { pkl.append(b, n); }, nullptr, nullptr, nullptr,
                                    nullptr, /*tag_aggregates=*/false);
        pickler.protocol();
        pickler.pushIValue(c10::IValue(d));
        pickler.stop();
        caffe2::serialize::PyTorchStreamWriter zip([&](const void* b, size_t n) {
            const char* c = static_cast<const char*>(b);
            bytes.insert(bytes.end(), c, c + n);
            return n;
        });
        zip.writeRecord("data.pkl", pkl.data(), pkl.size());
        const auto& data = pickler.tensorData();
        for (size_t i = 0; i < data.size(); ++i) {
            const auto w = torch::jit::getWriteableTensorData(data[i]);
            zip.writeRecord("data/" + std::to_string(i), w.data(), w.sizeInBytes());
        }
        zip.writeEndOfFile();
    } catch (const std::exception& e) {
        throw CheckpointError(path + ": cannot serialise the tensors (" + firstLine(e.what()) + ")");
    }
    writeFileAtomically(path, std::string(bytes.begin(), bytes.end()));
}

}  // namespace gw
