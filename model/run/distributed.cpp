// SPDX-License-Identifier: GPL-3.0-or-later
// torch.distributed for the engine: rendezvous through c10d's TCPStore, collectives through
// ProcessGroupGloo (NCCL on CUDA builds that have it), and naming the rank that is gone when one fails.
#include "model/run/distributed.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(GW_WITH_CUDA) && defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <thread>

#include <unistd.h>

namespace gw {

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

int envInt(const char* name, int min, int max, int otherwise) {
    const std::string v = env(name);
    if (v.empty()) return otherwise;
    size_t used = 0;
    long n = 0;
    try {
        n = std::stol(v, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != v.size() || n < min || n > max)
        throw DistributedError("environment variable " + std::string(name) + ": expected a whole number in " + std::to_string(min) +
                               ".." + std::to_string(max) + ", found '" + v + "'");
    return static_cast<int>(n);
}

std::string hostName() {
    char h[256] = {};
    return ::gethostname(h, sizeof h - 1) == 0 ? std::string(h) : std::string("?");
}

}  // namespace

DistributedEnv distributedFromEnvironment() {
    DistributedEnv e;
    if (!env("RANK").empty() || !env("WORLD_SIZE").empty()) {
        e.worldSize = envInt("WORLD_SIZE", 1, 1 << 20, 1);
        e.rank = envInt("RANK", 0, e.worldSize - 1, 0);
        e.localRank = envInt("LOCAL_RANK", 0, 1 << 20, e.rank);
        e.source = "torchrun variables";
    } else if (!env("SLURM_PROCID").empty() && envInt("SLURM_NTASKS", 1, 1 << 20, 1) > 1) {
        e.worldSize = envInt("SLURM_NTASKS", 1, 1 << 20, 1);
        e.rank = envInt("SLURM_PROCID", 0, e.worldSize - 1, 0);
        e.localRank = envInt("SLURM_LOCALID", 0, 1 << 20, 0);
        e.masterPort = 20000 + envInt("SLURM_JOB_ID", 0, 1 << 30, 0) % 10000;
        if (!env("SLURM_LAUNCH_NODE_IPADDR").empty()) e.masterAddr = env("SLURM_LAUNCH_NODE_IPADDR");
        e.source = "Slurm (srun)";
    } else {
        return e;
    }
    if (!env("MASTER_ADDR").empty()) e.masterAddr = env("MASTER_ADDR");
    e.masterPort = envInt("MASTER_PORT", 1, 65535, e.masterPort);
    return e;
}

struct ProcessGroup::Impl {
    c10::intrusive_ptr<c10d::TCPStore> store;
    c10::intrusive_ptr<c10d::ProcessGroup> group;
};

ProcessGroup::ProcessGroup(const DistributedEnv& e, const std::string& device, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()), env_(e) {
    const std::string where = e.masterAddr + ":" + std::to_string(e.masterPort);
    try {
        c10d::TCPStoreOptions opts;
        opts.port = static_cast<std::uint16_t>(e.masterPort);
        opts.isServer = e.rank == 0;
        opts.numWorkers = static_cast<std::size_t>(e.worldSize);
        opts.waitWorkers = true;
        opts.timeout = timeout;
        impl_->store = c10::make_intrusive<c10d::TCPStore>(e.masterAddr, opts);
        // Who is who, for the message when a rank disappears.
        const std::string me = "pid " + std::to_string(::getpid()) + " on " + hostName();
        impl_->store->set("gw/process/" + std::to_string(e.rank), std::vector<uint8_t>(me.begin(), me.end()));
        if (device.rfind("cuda", 0) == 0) {
#if defined(GW_WITH_CUDA) && defined(USE_C10D_NCCL)
            auto o = c10d::ProcessGroupNCCL::Options::create();
            o->timeout = timeout;
            impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, e.rank, e.worldSize, o);
#else
            throw DistributedError("device " + device + ": data-parallel training on CUDA needs a LibTorch built with NCCL; "
                                   "this one has Gloo only (train on the cpu, or build against a CUDA LibTorch)");
#endif
        } else {
            auto o = c10d::ProcessGroupGloo::Options::create(timeout);
            const bool loopback = e.masterAddr == "127.0.0.1" || e.masterAddr == "localhost";
            o->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                          : c10d::ProcessGroupGloo::createDefaultDevice());
            impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, e.rank, e.worldSize, o);
        }
    } catch (const DistributedError&) {
        throw;
    } catch (const std::exception& ex) {
        throw DistributedError("rank " + std::to_string(e.rank) + " of " + std::to_string(e.worldSize) + ": cannot join the " +
                               "process group at " + where + " (" + e.source + "): " + ex.what());
    }
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::diagnose(const std::string& what, const std::exception& e) {
    // Which ranks are still here? Each survivor marks itself in the store and looks for the others'
    // marks a moment later. The store lives in rank 0: if it is gone too, rank 0 is the one.
    std::string first = e.what();
    first = first.substr(0, first.find('\n'));
    const std::string mark = "gw/alive/" + std::to_string(env_.rank);
    try {
        impl_->store->set(mark, std::vector<uint8_t>{1});
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        std::string gone;
        for (int r = 0; r < env_.worldSize; ++r) {
            if (r == env_.rank || impl_->store->check({"gw/alive/" + std::to_string(r)})) continue;
            std::string who;
            try {
                const auto b = impl_->store->get("gw/process/" + std::to_string(r));
                who = std::string(b.begin(), b.end());
            } catch (const std::exception&) {
            }
            gone += (gone.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) + (who.empty() ? "" : " (" + who + ")");
        }
        if (!gone.empty())
            throw DistributedError(what + ": " + gone + " stopped answering (its process ended or its connection dropped); "
                                   "Gloo said: " + first);
    } catch (const DistributedError&) {
        throw;
    } catch (const std::exception&) {
        if (env_.rank != 0)
            throw DistributedError(what + ": rank 0, which holds the rendezvous store at " + env_.masterAddr + ":" +
                                   std::to_string(env_.masterPort) + ", stopped answering; Gloo said: " + first);
    }
    throw DistributedError(what + " failed on rank " + std::to_string(env_.rank) + ": " + first);
}

void ProcessGroup::allreduceSum(torch::Tensor& t) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
        std::vector<at::Tensor> v{t};
        impl_->group->allreduce(v)->wait();
    } catch (const DistributedError&) {
        throw;
    } catch (const std::exception& e) {
        diagnose("all-reduce", e);
    }
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++calls_;
}

void ProcessGroup::broadcast(torch::Tensor& t, int root) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
        std::vector<at::Tensor> v{t};
        c10d::BroadcastOptions o;
        o.rootRank = root;
        impl_->group->broadcast(v, o)->wait();
    } catch (const std::exception& e) {
        diagnose("broadcast", e);
    }
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++calls_;
}

std::string ProcessGroup::shareFromRank0(const std::string& key, const std::string& value) {
    try {
        const std::string k = "gw/shared/" + key;
        if (env_.rank == 0) {
            impl_->store->set(k, std::vector<uint8_t>(value.begin(), value.end()));
            return value;
        }
        const auto b = impl_->store->get(k);
        return std::string(b.begin(), b.end());
    } catch (const std::exception& e) {
        diagnose("sharing " + key, e);
    }
}

void ProcessGroup::barrier() {
    try {
        impl_->group->barrier()->wait();
    } catch (const std::exception& e) {
        diagnose("barrier", e);
    }
}

}  // namespace gw
