// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file distributed.h
/// Data-parallel training over several processes with LibTorch's torch.distributed (c10d): a TCPStore
/// for the rendezvous (rank 0 hosts it at MASTER_ADDR:MASTER_PORT) and ProcessGroupGloo for the
/// collectives on CPU tensors (NCCL on CUDA builds that have it). The ranks start from the variables
/// torchrun and `srun` set, so `gw train` is the same binary under `gw train --nproc N`, torchrun or a
/// Slurm job with several tasks. What the engine does with it (each rank's share of every group's batch,
/// gradients averaged before AdamW, rank 0 writing): docs/architecture.md, "Data-parallel training".
/// The C++ frontend has no DistributedDataParallel; this is its explicit equivalent for one flat
/// gradient buffer (model/core/optim.h FlatAdamW).
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/core/torch_fwd.h"

namespace gw {

/// A collective failed: a rank died, the connection dropped or the rendezvous timed out. The message
/// names the rank that stopped answering when it can be told.
class DistributedError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Where this process stands among the ranks.
struct DistributedEnv {
    int rank = 0;                  ///< RANK (or SLURM_PROCID)
    int worldSize = 1;             ///< WORLD_SIZE (or SLURM_NTASKS)
    int localRank = 0;             ///< LOCAL_RANK (or SLURM_LOCALID): picks cuda:LOCAL_RANK on GPU nodes
    std::string masterAddr = "127.0.0.1";  ///< MASTER_ADDR (or SLURM_LAUNCH_NODE_IPADDR)
    int masterPort = 29500;        ///< MASTER_PORT (or 20000 + SLURM_JOB_ID % 10000 under Slurm)
    std::string source;            ///< "torchrun variables", "Slurm (srun)" or "" (one process)
    bool active() const { return worldSize > 1; }
};

/// Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; without RANK, SLURM_PROCID,
/// SLURM_NTASKS and SLURM_LOCALID of a job step with several tasks. \throws DistributedError naming the
/// variable when one is set but malformed (not a number, rank outside 0..WORLD_SIZE-1, a port outside
/// 1..65535).
DistributedEnv distributedFromEnvironment();

/// The process group of one training: the store, the Gloo (or NCCL) group, and the time spent in
/// collectives (for the per-step communication figure of docs/benchmarks.md).
class ProcessGroup {
public:
    /// Joins the group (blocks until every rank has, up to `timeout`). `device` "cpu" uses Gloo;
    /// "cuda..." uses NCCL where LibTorch has it. \throws DistributedError naming MASTER_ADDR:PORT and
    /// the ranks when the rendezvous fails or times out.
    ProcessGroup(const DistributedEnv& env, const std::string& device,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(300000));
    ~ProcessGroup();
    ProcessGroup(const ProcessGroup&) = delete;
    ProcessGroup& operator=(const ProcessGroup&) = delete;

    int rank() const { return env_.rank; }
    int size() const { return env_.worldSize; }
    const DistributedEnv& env() const { return env_; }

    /// Sums `t` (any shape) over the ranks, in place. \throws DistributedError (which rank is gone).
    void allreduceSum(torch::Tensor& t);
    /// Rank `root`'s `t` into every rank's, in place. \throws DistributedError.
    void broadcast(torch::Tensor& t, int root = 0);
    /// A text from rank 0 to every rank (through the store), e.g. the run folder. \throws DistributedError.
    std::string shareFromRank0(const std::string& key, const std::string& value);
    /// Waits for every rank. \throws DistributedError.
    void barrier();

    /// Seconds spent in allreduceSum and broadcast, and how many calls.
    double collectiveSeconds() const { return seconds_; }
    int64_t collectiveCalls() const { return calls_; }

private:
    [[noreturn]] void diagnose(const std::string& what, const std::exception& e);
    struct Impl;
    std::unique_ptr<Impl> impl_;
    DistributedEnv env_;
    double seconds_ = 0;
    int64_t calls_ = 0;
};

}  // namespace gw
