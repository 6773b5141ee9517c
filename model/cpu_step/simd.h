// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file simd.h
/// Run-time choice of instruction set for the hand-written CPU step's hot loops. The build targets
/// generic x86-64; a loop's body is marked GW_SIMD (always inlined) and GW_DISPATCH compiles it again
/// for AVX2 + FMA and for AVX-512 (F, VL) and defines the function that calls the version the CPU can
/// run (CPUID, looked up once). Only for use in .cpp files of model/cpu_step.

namespace gw::cpu {

#define GW_SIMD inline __attribute__((always_inline))

/// Whether the CPU runs AVX2 and FMA.
inline bool hasAvx2() {
    static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return yes;
}
/// Whether the CPU runs AVX2, FMA, AVX-512F and AVX-512VL.
inline bool hasAvx512() {
    static const bool yes = hasAvx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    return yes;
}

/// Defines `ret name params` calling name##Body (a GW_SIMD function) compiled for the best of
/// AVX-512, AVX2 + FMA and the baseline.
#define GW_DISPATCH(ret, name, params, args)                                                                         \
    __attribute__((target("avx2,fma"))) ret name##Avx2 params { return name##Body args; }                       \
    __attribute__((target("avx512f,avx512vl,avx2,fma"))) ret name##Avx512 params { return name##Body args; } \
    ret name params { return hasAvx512() ? name##Avx512 args : hasAvx2() ? name##Avx2 args : name##Body args; }

}  // namespace gw::cpu
