// winograd.cpp: the F(4x4, 3x3) Winograd convolution on AVX-512 (equations, layout and accuracy in
// winograd.h).
#include "kernels/winograd.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>


#include "core/aligned.h"
#include "core/error.h"
#include "core/tensor.h"
#include "kernels/conv3x3.h"
#include "kernels/gemm_simd.h"
#include "kernels/parallel.h"
#include "kernels/simd.h"

#include <omp.h>

namespace gt {

namespace {

Conv3x3Algo initial_algo() {
  const char* env = std::getenv("GENTAPE_CONV3X3");
  if (!env || !*env) return Conv3x3Algo::Winograd;
  const std::string s(env);
  if (s == "winograd") return Conv3x3Algo::Winograd;
  if (s == "direct") return Conv3x3Algo::Direct;
  GT_FAIL("GENTAPE_CONV3X3=" << s << ": expected winograd or direct");
}

Conv3x3Algo& algo_setting() {
  static Conv3x3Algo algo = initial_algo();
  return algo;
}

// G (6, 3) of F(4x4, 3x3) in double; GG[a*6+b][i*3+j] = G[a][i] G[b][j] maps a 3x3 kernel to its 36
// points (U = G w G^T), and its transpose maps dU back (dw = G^T dU G).
constexpr double kG[6][3] = {{1.0 / 4, 0, 0},
                             {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                             {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                             {1.0 / 24, 1.0 / 12, 1.0 / 6},
                             {1.0 / 24, -1.0 / 12, 1.0 / 6},
                             {0, 0, 1}};
float gg(int xi, int tap) { return (float)(kG[xi / 6][tap / 3] * kG[xi % 6][tap % 3]); }

}  // namespace

Conv3x3Algo conv3x3_algo() { return algo_setting(); }
void set_conv3x3_algo(Conv3x3Algo algo) { algo_setting() = algo; }

bool conv3x3_winograd_weight_grad_applies(int64_t C, int64_t O, int threads) {
  return kWinogradPoints * C * O * (int64_t)std::min(std::max(threads, 1), kWinogradMaxThreads) <=
         kWinogradMaxPartialFloats;
}

bool conv3x3_winograd_applies(int64_t C, int64_t O) {
  const int64_t L = conv3x3_winograd_channels();
  return conv3x3_winograd_available() && C > 0 && O > 0 && C % L == 0 && O % L == 0 &&
         conv3x3_algo() == Conv3x3Algo::Winograd;
}

void winograd_weights(const float* wt, int64_t C, int64_t O, float* U) {
  // U[xi][c][o] = sum_tap GG[xi][tap] wt[c*9 + tap][o]: contiguous in o, so the inner loop vectorises.
  float coef[kWinogradPoints][9];
  for (int xi = 0; xi < kWinogradPoints; ++xi)
    for (int tap = 0; tap < 9; ++tap) coef[xi][tap] = gg(xi, tap);
  // Grain: rows c of ~200 O multiply-adds each (196 nonzero GG coefficients), 256 / O of them per
  // piece, so that 32 -> 32 (~200K multiply-adds, ~50 us) runs on both threads: with 4096 / O it ran
  // on the calling thread alone, 42 times per U-Net step, while the other thread waited.
  parallel_for(C, std::max<int64_t>(1, 256 / std::max<int64_t>(O, 1)), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int xi = 0; xi < kWinogradPoints; ++xi) {
        float* dst = U + (xi * C + c) * O;
        std::fill(dst, dst + O, 0.0f);
        for (int tap = 0; tap < 9; ++tap) {
          const float k = coef[xi][tap];
          if (k == 0.0f) continue;
          const float* src = wt + (c * 9 + tap) * O;
          for (int64_t o = 0; o < O; ++o) dst[o] += k * src[o];
        }
      }
  });
}

namespace {
struct CacheEntry {
  const float* key = nullptr;
  bool flipped = false;
  uint64_t last_use = 0;
  std::vector<float> w;                      // the weights U was made from
  std::shared_ptr<AlignedVector> U;          // (36, C, O), or (36, O, C) when flipped
};
std::mutex cache_mutex;
std::vector<CacheEntry> cache;
uint64_t cache_clock = 0;
}  // namespace

std::shared_ptr<const AlignedVector> winograd_weights_cached(const float* w, int64_t O, int64_t C, bool flipped) {
  const size_t nw = (size_t)(O * C * 9);
  std::lock_guard<std::mutex> lock(cache_mutex);
  CacheEntry* e = nullptr;
  for (CacheEntry& c : cache)
    if (c.key == w && c.flipped == flipped) e = &c;
  if (e && e->w.size() == nw && std::memcmp(e->w.data(), w, nw * sizeof(float)) == 0) {
    e->last_use = ++cache_clock;
    return e->U;
  }
  if (!e) {
    if (cache.size() < (size_t)kWinogradCacheEntries) {
      cache.emplace_back();
      e = &cache.back();
    } else {
      e = &*std::min_element(cache.begin(), cache.end(),
                             [](const CacheEntry& a, const CacheEntry& b) { return a.last_use < b.last_use; });
    }
    e->key = w;
    e->flipped = flipped;
  }
  e->w.assign(w, w + nw);
  // A U still held by a caller (another thread's convolution) is left to it; otherwise reused.
  if (!e->U || e->U.use_count() > 1) e->U = std::make_shared<AlignedVector>();
  e->U->resize((size_t)kWinogradPoints * nw / 9);
  Tensor wt = Tensor::empty({(int64_t)nw});
  if (flipped) {
    conv3x3_weights_backward(w, O, C, wt.data());
    winograd_weights(wt.data(), O, C, e->U->data());
  } else {
    conv3x3_weights_forward(w, O, C, wt.data());
    winograd_weights(wt.data(), C, O, e->U->data());
  }
  e->last_use = ++cache_clock;
  return e->U;
}

#if GENTAPE_SIMD

namespace {

constexpr int kL = kSimdLanes;  // channels per vector (16 on AVX-512, 8 on AVX2)

// ---- the 1-D transforms on vectors (kL channels at once) ----

// z = B^T d (6 -> 6)
inline void bt6(const vfloat d[6], vfloat z[6]) {
  const vfloat four = vset1(4.f), five = vset1(5.f), two = vset1(2.f);
  z[0] = vfmadd(four, d[0], vfnmadd(five, d[2], d[4]));
  z[1] = vfnmadd(four, vadd(d[1], d[2]), vadd(d[3], d[4]));
  z[2] = vfmadd(four, vsub(d[1], d[2]), vsub(d[4], d[3]));
  z[3] = vfmadd(two, vsub(d[3], d[1]), vsub(d[4], d[2]));
  z[4] = vfmadd(two, vsub(d[1], d[3]), vsub(d[4], d[2]));
  z[5] = vfmadd(four, d[1], vfnmadd(five, d[3], d[5]));
}

// y = A^T m (6 -> 4)
inline void at6(const vfloat m[6], vfloat y[4]) {
  const vfloat a = vadd(m[1], m[2]), b = vsub(m[1], m[2]);
  const vfloat c = vadd(m[3], m[4]), e = vsub(m[3], m[4]);
  y[0] = vadd(vadd(m[0], a), c);
  y[1] = vfmadd(vset1(2.f), e, b);
  y[2] = vfmadd(vset1(4.f), c, a);
  y[3] = vadd(vfmadd(vset1(8.f), e, b), m[5]);
}

// m = A y (4 -> 6), the adjoint of at6
inline void a4(const vfloat y[4], vfloat m[6]) {
  const vfloat p = vadd(y[0], y[2]), q = vadd(y[1], y[3]);  // even / odd
  const vfloat p4 = vfmadd(vset1(4.f), y[2], y[0]);
  const vfloat q4 = vfmadd(vset1(4.f), y[3], y[1]);           // y1 + 4 y3
  m[0] = y[0];
  m[1] = vadd(p, q);
  m[2] = vsub(p, q);
  m[3] = vfmadd(vset1(2.f), q4, p4);   // y0 + 2 y1 + 4 y2 + 8 y3
  m[4] = vfnmadd(vset1(2.f), q4, p4);  // y0 - 2 y1 + 4 y2 - 8 y3
  m[5] = y[3];
}

// The geometry of one convolution. The tiles cover canvases of images that share their zero
// borders: px images side by side in a canvas row, one zero column between neighbours (the right
// padding of one is the left padding of the next), and, when `stacked`, all canvas rows in one
// canvas, one zero row between them. A canvas holds VH x VW pixels (borders included), covered by
// TY x TX tiles of 4x4 outputs; a tile row's input strip is 6 rows by Wp = 4 TX + 2 columns (the
// outer zero border included), its output strip 4 by 4 TX. Outputs that fall on a shared border
// are computed and dropped, and a border's dy is zero. At 28x28 the 4x4 tiles cover each image
// exactly and the canvas is one image (px = 1, not stacked); at 14x14 an image alone needs 4 x 4
// tiles for its 14 x 14 outputs, but 4 images side by side (59 columns) need 15 tile columns and
// 16 such rows stacked (239 rows) 60 tile rows: 900 tiles for a batch of 64 instead of 1024.
struct Geom {
  int64_t B, C, H, W, O;
  int64_t px;    // images per canvas row
  bool stacked;  // canvas rows stacked into one canvas
  int64_t VB, VH;  // canvases, and their height (rows of pixels, shared borders included)
  int64_t TY, TX, Wp;
};
Geom make_geom_packed(int64_t B, int64_t C, int64_t H, int64_t W, int64_t O, int64_t px, bool stacked) {
  const int64_t rows = (B + px - 1) / px;  // canvas rows of images
  const int64_t VB = stacked ? 1 : rows, VH = stacked ? rows * (H + 1) - 1 : H, VW = px * (W + 1) - 1;
  const int64_t TX = (VW + 3) / 4;
  return Geom{B, C, H, W, O, px, stacked, VB, VH, (VH + 3) / 4, TX, 4 * TX + 2};
}
// The packing with the fewest tiles (the products and the transforms scale with them), px <= 8;
// on a tie the simpler one (one image per canvas where that is as good). Fixed by the sizes alone,
// so the summation order, and the results, do not depend on the thread count.
Geom make_geom(int64_t B, int64_t C, int64_t H, int64_t W, int64_t O) {
  Geom best = make_geom_packed(B, C, H, W, O, 1, false);
  for (int64_t px = 1; px <= std::min<int64_t>(8, B); ++px)
    for (bool stacked : {false, true}) {
      const Geom g = make_geom_packed(B, C, H, W, O, px, stacked);
      if (g.VB * g.TY * g.TX < best.VB * best.TY * best.TX) best = g;
    }
  return best;
}
// Row vr of canvas vb: image row h of the canvas row of images iy, or nothing (a border: h < 0).
struct CanvasRow {
  int64_t iy, h;
};
inline CanvasRow canvas_row(const Geom& g, int64_t vb, int64_t vr) {
  if (vr < 0 || vr >= g.VH) return CanvasRow{0, -1};
  if (!g.stacked) return CanvasRow{vb, vr};
  const int64_t iy = vr / (g.H + 1), h = vr % (g.H + 1);
  return CanvasRow{iy, h == g.H ? -1 : h};
}

// Lanes l of a vector = row[w0 + l] where 0 <= w0 + l < W, else 0: the vectors at a row's edges.
// AVX2 with W >= 8: the nearest vector inside the row, its lanes moved into place by one permute
// and those outside the row zeroed (vmaskmovps loads here took ~45% of the input strips' time on
// this project's Zen 4 VM); otherwise a masked load.
struct EdgeLoad {
  vmask in;  // the lanes inside the row
#if GENTAPE_SIMD == 256
  bool permute;
  int64_t base;  // offset of the vector loaded, relative to the row
  __m256i idx;
#endif
};
inline EdgeLoad edge_load(int64_t w0, int64_t W) {
  EdgeLoad e;
  e.in = vlanes(-w0, W - w0);
#if GENTAPE_SIMD == 256
  e.permute = W >= kL;
  e.base = std::min<int64_t>(std::max<int64_t>(w0, 0), W - kL);
  e.idx = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)(w0 - e.base)));
#endif
  return e;
}
inline vfloat load_edge(const float* row, int64_t w0, const EdgeLoad& e) {
#if GENTAPE_SIMD == 256
  if (e.permute)
    return _mm256_and_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(row + e.base), e.idx), _mm256_castsi256_ps(e.in));
#endif
  return vload_mask(e.in, row + w0);
}

// dst[s] (Wb vectors of kL channels) = row h of the kL planes src (kL, H, W) at column s - off, 0
// where that is outside the image; sum (when not null) += the row's values. Transposed kL columns
// at a time in registers.
inline void row_to_blocked(const float* src, int64_t H, int64_t W, int64_t h, int64_t off, int64_t Wb, float* dst,
                           vfloat* sum = nullptr) {
  if (h < 0 || h >= H) {
    std::memset(dst, 0, (size_t)(Wb * kL) * sizeof(float));
    return;
  }
  for (int64_t s0 = 0; s0 < Wb; s0 += kL) {
    const int64_t w0 = s0 - off;  // image column of lane 0
    const EdgeLoad e = edge_load(w0, W);
    const int64_t n = std::min<int64_t>(kL, Wb - s0);
    if (vnone(e.in)) {  // only border columns (at W = 14 the second half of each padded row): zeros
      std::memset(dst + s0 * kL, 0, (size_t)(n * kL) * sizeof(float));
      continue;
    }
    vfloat v[kL];
    if (w0 >= 0 && w0 + kL <= W) {  // all in the image: plain loads
      for (int l = 0; l < kL; ++l) v[l] = vload(src + (l * H + h) * W + w0);
    } else {
      for (int l = 0; l < kL; ++l) v[l] = load_edge(src + (l * H + h) * W, w0, e);
    }
    // The kL planes are kL streams H*W floats apart, too many for the hardware prefetcher: fetch
    // the row 4 below (the next tile row's) while this one is transposed.
    if (h + 4 < H)
      for (int l = 0; l < kL; ++l)
        _mm_prefetch((const char*)(src + (l * H + h + 4) * W + std::max<int64_t>(w0, 0)), _MM_HINT_T0);
    vtranspose(v);
    for (int64_t j = 0; j < n; ++j) vstore(dst + (s0 + j) * kL, v[j]);
    if (sum)
      for (int64_t j = 0; j < n; ++j) *sum = vadd(*sum, v[j]);
  }
}

// Row h of the kL planes dst (kL, H, W), columns [0, W), (+)= src[w] (vectors of kL channels) +
// bias, + the same row of the kL planes `res` (kL, H, W) when not null.
inline void row_from_blocked(const float* src, int64_t H, int64_t W, int64_t h, const vfloat* bias, float* dst,
                             bool accumulate, const float* res = nullptr) {
  for (int64_t w0 = 0; w0 < W; w0 += kL) {
    const int64_t n = std::min<int64_t>(kL, W - w0);
    const EdgeLoad e = edge_load(w0, W);
    vfloat v[kL];
    for (int64_t j = 0; j < kL; ++j) v[j] = j < n ? vload(src + (w0 + j) * kL) : vzero();
    vtranspose(v);
    for (int l = 0; l < kL; ++l) {
      float* out = dst + (l * H + h) * W + w0;
      vfloat r = vadd(v[l], bias[l]);
      if (n == kL) {
        if (res) r = vadd(r, vload(res + (l * H + h) * W + w0));
        if (accumulate) r = vadd(r, vload(out));
      } else {
        if (res) r = vadd(r, load_edge(res + (l * H + h) * W, w0, e));
        if (accumulate) r = vadd(r, load_edge(out - w0, w0, e));
      }
      vstore_first(out, n, r);
    }
  }
}

// V[i + tx][xi][kL cb ..] = (B^T d B)[xi] for every tile tx of one tile row, from the 6 rows
// (Wp vectors of kL channels each) of its input strip in channel block cb; the tiles are `ts`
// floats apart in V, the points `ps` (the forward: tile-major, (tiles, 36, C); the weight gradient,
// whose products run down the tiles: point-major, (36, tiles, C)). The column transform B^T d runs
// once per strip column into tmp (6, Wp, kL) — neighbouring tiles share 2 of their 6 columns — and
// then the row transform per tile: 72 six-point transforms per 7 tiles instead of 84, each a
// plain load-6 / store-6 (transforming a whole 6x6 patch in registers spilled on AVX2's 16).
void input_transform(const float* const strip[6], const Geom& g, int64_t cb, int64_t i, int64_t ts, int64_t ps,
                     float* tmp, float* V) {
  const int64_t rowf = g.Wp * kL;
  for (int64_t c = 0; c < g.Wp; ++c) {
    vfloat d[6], z[6];
    for (int r = 0; r < 6; ++r) d[r] = vload(strip[r] + c * kL);
    bt6(d, z);  // z[a] = (B^T d)[a][c]
    for (int a = 0; a < 6; ++a) vstore(tmp + a * rowf + c * kL, z[a]);
  }
  for (int64_t tx = 0; tx < g.TX; ++tx) {
    float* dst = V + (i + tx) * ts + cb * kL;
    for (int a = 0; a < 6; ++a) {
      vfloat d[6], z[6];
      for (int s = 0; s < 6; ++s) d[s] = vload(tmp + a * rowf + (4 * tx + s) * kL);
      bt6(d, z);  // z[b] = (B^T d B)[a][b]
      for (int b = 0; b < 6; ++b) vstore(dst + (a * 6 + b) * ps, z[b]);
    }
  }
}

// The output strip ys (4, 4 TX, kL) of channel block ob = (A^T M A) for every tile tx of one tile
// row, from M[i + tx][xi][kL ob ..]. M: (tiles, 36, O).
void output_transform(const float* M, const Geom& g, int64_t ob, int64_t i, float* ys) {
  const int64_t Wy = 4 * g.TX;
  for (int64_t tx = 0; tx < g.TX; ++tx) {
    const float* src = M + (i + tx) * kWinogradPoints * g.O + ob * kL;
    vfloat rows[6][4];
    for (int a = 0; a < 6; ++a) {
      vfloat m[6];
      for (int b = 0; b < 6; ++b) m[b] = vload(src + (a * 6 + b) * g.O);
      at6(m, rows[a]);  // rows[a][v] = (M A)[a][v]
    }
    for (int v = 0; v < 4; ++v) {
      vfloat col[6], y[4];
      for (int a = 0; a < 6; ++a) col[a] = rows[a][v];
      at6(col, y);
      for (int u = 0; u < 4; ++u) vstore(ys + (u * Wy + 4 * tx + v) * kL, y[u]);
    }
  }
}

// dM[xi][i + tx][kL ob ..] = (A dY A^T)[xi] for every tile tx of one tile row, from its dy strip
// dys (4, 4 TX, kL) of channel block ob. dM: (36, ld, O), point-major.
void dy_transform(const float* dys, const Geom& g, int64_t ob, int64_t i, int64_t ld, float* dM) {
  const int64_t Wy = 4 * g.TX;
  for (int64_t tx = 0; tx < g.TX; ++tx) {
    vfloat rows[4][6];
    for (int u = 0; u < 4; ++u) {
      vfloat y[4];
      for (int v = 0; v < 4; ++v) y[v] = vload(dys + (u * Wy + 4 * tx + v) * kL);
      a4(y, rows[u]);  // rows[u][b] = (dY A^T)[u][b]
    }
    float* dst = dM + (i + tx) * g.O + ob * kL;
    for (int b = 0; b < 6; ++b) {
      vfloat col[4], m[6];
      for (int u = 0; u < 4; ++u) col[u] = rows[u][b];
      a4(col, m);
      for (int a = 0; a < 6; ++a) vstore(dst + (a * 6 + b) * ld * g.O, m[a]);
    }
  }
}

// Row vr of canvas vb of channel block cb as an input strip row: Wp vectors of kL channels, the
// image columns at 1 + ix (W + 1) + w, zero elsewhere.
void canvas_row_to_blocked(const float* x, const Geom& g, int64_t cb, int64_t vb, int64_t vr, float* row) {
  const CanvasRow cr = canvas_row(g, vb, vr);
  if (cr.h < 0) {
    std::memset(row, 0, (size_t)(g.Wp * kL) * sizeof(float));
    return;
  }
  for (int64_t ix = 0; ix < g.px; ++ix) {  // windows of W + 2 columns, neighbours sharing one zero column
    const int64_t b = cr.iy * g.px + ix;
    float* dst = row + ix * (g.W + 1) * kL;
    if (b < g.B)
      row_to_blocked(x + (b * g.C + cb * kL) * g.H * g.W, g.H, g.W, cr.h, 1, g.W + 2, dst);
    else
      std::memset(dst, 0, (size_t)((g.W + 2) * kL) * sizeof(float));
  }
  const int64_t used = g.px * (g.W + 1) + 1;
  std::memset(row + used * kL, 0, (size_t)((g.Wp - used) * kL) * sizeof(float));
}

// V of the tile rows [q0, q0 + nr) (row q = canvas q / TY, tile row q % TY). The input strips of
// consecutive tile rows of one canvas share 2 rows, so each channel block's rows live in a ring of
// 8 row buffers (ring: 8 x Wp x kL floats, followed by input_transform's 6 x Wp x kL) and only
// the 4 new ones are transposed.
void input_group(const float* x, const Geom& g, int64_t q0, int64_t nr, int64_t ts, int64_t ps, float* V,
                 float* ring) {
  const int64_t CB = g.C / kL, rowf = g.Wp * kL;
  for (int64_t cb = 0; cb < CB; ++cb)
    for (int64_t q = q0; q < q0 + nr; ++q) {
      const int64_t vb = q / g.TY, ty = q % g.TY;
      const int r0 = q > q0 && ty > 0 ? 2 : 0;  // rows 0, 1 are the previous tile row's rows 4, 5
      const float* strip[6];
      for (int r = 0; r < 6; ++r) {
        float* row = ring + ((4 * ty + r) & 7) * rowf;  // canvas row 4 ty - 1 + r
        if (r >= r0) canvas_row_to_blocked(x, g, cb, vb, 4 * ty - 1 + r, row);
        strip[r] = row;
      }
      input_transform(strip, g, cb, (q - q0) * g.TX, ts, ps, ring + 8 * rowf, V);
    }
}

// Tile rows per group: V and M of the group's tiles (36 x tiles x (C + O) floats) within ~512 KB,
// half the L2, and, where that allows, a tile count that is a multiple of the GEMM kernel's 6 rows.
// A wide canvas (15 tiles per row at 14x14) would get a single row at 64 -> 64, whose 15-row
// products end in a 3-row tile: there, rows are added up to 24 tiles or more, within the whole L2
// (2 rows: 30 tiles, 553 KB; the forward 64 -> 64 @14 then took 2.39-2.59 ms instead of 2.65).
int64_t group_rows(const Geom& g, int64_t max_tiles) {
  const int64_t point_bytes = 4 * kWinogradPoints * (g.C + g.O);  // V and M of one tile
  const int64_t fit = std::min<int64_t>(max_tiles, (int64_t(512) << 10) / point_bytes);
  int64_t rows = std::max<int64_t>(1, fit / g.TX);
  if (rows * g.TX < 24)
    for (int64_t r = rows + 1; r * g.TX * point_bytes <= (int64_t(1) << 20) && r * g.TX <= 2 * max_tiles; ++r)
      if (r * g.TX >= 24 && r * g.TX % 6 == 0) return r;
  for (int64_t r = rows; r >= 1 && r * 2 >= rows; --r)
    if (r * g.TX % 6 == 0) return r;
  return rows;
}

// Each thread's share of the batch's tile rows: [q0, q1) of B * TY, contiguous.
struct Share {
  int64_t q0, q1;
};
Share share(int64_t rows_total, int th, int threads) {
  return Share{rows_total * th / threads, rows_total * (th + 1) / threads};
}

}  // namespace

bool conv3x3_winograd_available() { return true; }
int conv3x3_winograd_channels() { return kL; }

WinogradTiling conv3x3_winograd_tiling(int64_t B, int64_t H, int64_t W) {
  const Geom g = make_geom(B, kL, H, W, kL);
  return WinogradTiling{g.px, g.stacked, g.VB * g.TY * g.TX};
}

void conv3x3_winograd_cpu(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, const float* U, int64_t O,
                          const float* bias, float* y, bool accumulate, const float* addend, Addend kind) {
  GT_CHECK(!addend || kind != Addend::None, "conv3x3_winograd_cpu: an addend needs its kind");
  GT_CHECK(C % kL == 0 && O % kL == 0, "conv3x3_winograd_cpu: channels " << C << " -> " << O
                                                                         << " must be multiples of " << kL);
  if (B == 0 || H == 0 || W == 0) return;
  const Geom g = make_geom(B, C, H, W, O);
  const int64_t OB = O / kL, Wy = 4 * g.TX, rows_total = g.VB * g.TY;
  const int64_t R = group_rows(g, 48), NT = R * g.TX;  // tile rows and tiles per group
  const int threads = omp_in_parallel() ? 1
                                        : (int)std::min<int64_t>({omp_get_max_threads(), (rows_total + R - 1) / R,
                                                                  (int64_t)kWinogradMaxThreads});
  const int64_t strip = 14 * g.Wp * kL, per_thread = kWinogradPoints * NT * (C + O) + strip;
  // Each thread owns a contiguous share of the tile rows (the images the neighbouring ops' threads
  // wrote; handing every group out from one shared counter measured slower: 0.273 vs 0.266 s per
  // U-Net step) and takes its groups in order from its share's counter; a thread done with its own
  // share then takes the remaining groups of the others' from their counters. The two vCPUs of this
  // project's VM do not run equally fast (on the AVX2 VM the main thread spent 4-27% more cycles
  // on the same transforms), and without this the faster one waited at the end of every
  // convolution. Each group's outputs are computed the same way whichever thread takes it, so the
  // results stay independent of the thread count and of the timing.
  std::atomic<int64_t> next[kWinogradMaxThreads];
  for (int t = 0; t < threads; ++t) next[t].store(0, std::memory_order_relaxed);
#pragma omp parallel num_threads(threads)
  {
    const int th = omp_get_thread_num();
    // Each thread's own scratch, grown once and kept: a block from the shared caching allocator
    // would be written by whichever thread had its slice last call, and moving those cache lines
    // between the cores cost more than the transforms (the worker thread ran them 1.3-2.9x slower).
    thread_local AlignedVector scratch;
    if (scratch.size() < (size_t)per_thread) scratch.resize((size_t)per_thread);
    float* V = scratch.data();
    float* M = V + kWinogradPoints * NT * C;
    float* xs = M + kWinogradPoints * NT * O;  // the input rows' ring (8 + 6, Wp, kL), or an output strip (4, 4 TX, kL)
    for (int k = 0; k < threads; ++k) {
      const int owner = (th + k) % threads;
      const Share sh = share(rows_total, owner, threads);
      for (int64_t gi; (gi = next[owner].fetch_add(1, std::memory_order_relaxed)) * R < sh.q1 - sh.q0;) {
        const int64_t q0 = sh.q0 + gi * R;
        const int64_t nr = std::min(R, sh.q1 - q0), n = nr * g.TX;
        input_group(x, g, q0, nr, kWinogradPoints * C, C, V, xs);
        // M[., xi] (n, O) = V[., xi] (n, C) U[xi] (C, O); the tiles' rows are 36 C (36 O) floats apart:
        // a tile's 36 points are stored together, so each transform writes (reads) one contiguous block.
        for (int xi = 0; xi < kWinogradPoints; ++xi)
          gemm_simd_block(false, false, n, O, C, 1.0f, V + xi * C, kWinogradPoints * C, U + xi * C * O, O, 0.0f,
                          nullptr, false, M + xi * O, kWinogradPoints * O);
        for (int64_t q = q0; q < q0 + nr; ++q) {
          const int64_t vb = q / g.TY, ty = q % g.TY;
          for (int64_t ob = 0; ob < OB; ++ob) {
            output_transform(M, g, ob, (q - q0) * g.TX, xs);
            for (int u = 0; u < 4; ++u) {
              const CanvasRow cr = canvas_row(g, vb, 4 * ty + u);
              if (cr.h < 0) continue;  // a shared border or past the canvas: computed, dropped
              for (int64_t ix = 0; ix < g.px; ++ix) {
                const int64_t b = cr.iy * g.px + ix;
                if (b >= B) break;
                vfloat bv[kL];
                for (int l = 0; l < kL; ++l) {
                  const int64_t o = ob * kL + l;
                  bv[l] = vset1((bias ? bias[o] : 0.0f) +
                                (addend && kind == Addend::PerSample ? addend[b * O + o] : 0.0f));
                }
                float* dst = y + (b * O + ob * kL) * H * W;
                const float* res = addend && kind == Addend::Full ? addend + (b * O + ob * kL) * H * W : nullptr;
                row_from_blocked(xs + (u * Wy + ix * (W + 1)) * kL, H, W, cr.h, bv, dst, accumulate, res);
              }
            }
          }
        }
      }
    }
  }
}

void conv3x3_winograd_weight_grad_cpu(const float* x, const float* dy, int64_t B, int64_t C, int64_t H, int64_t W,
                                      int64_t O, float* dw, float* db) {
  GT_CHECK(C % kL == 0 && O % kL == 0, "conv3x3_winograd_weight_grad_cpu: channels "
                                           << C << " -> " << O << " must be multiples of " << kL);
  if (B == 0 || H == 0 || W == 0) return;
  const Geom g = make_geom(B, C, H, W, O);
  const int64_t OB = O / kL, Wy = 4 * g.TX, rows_total = g.VB * g.TY;
  // Larger groups than the forward's: each group reads and writes all of this thread's dU once.
  const int64_t R = group_rows(g, 96), NT = R * g.TX;
  const int threads = omp_in_parallel() ? 1
                                        : (int)std::min<int64_t>({omp_get_max_threads(), (rows_total + R - 1) / R,
                                                                  (int64_t)kWinogradMaxThreads});
  const int64_t nu = kWinogradPoints * C * O, strip = 14 * g.Wp * kL;
  const int64_t per_thread = nu + O + kWinogradPoints * NT * (C + O) + strip;
  // Per-thread scratch (dU, db partials, V, dM, strips) kept by each thread, as in the forward; the
  // partials are read back through `part` after the parallel region.
  float* part[kWinogradMaxThreads];
#pragma omp parallel num_threads(threads)
  {
    const int th = omp_get_thread_num();
    thread_local AlignedVector scratch;
    if (scratch.size() < (size_t)per_thread) scratch.resize((size_t)per_thread);
    float* dU = scratch.data();
    part[th] = dU;
    float* dbp = dU + nu;  // this thread's bias gradient
    float* V = dbp + O;
    float* dM = V + kWinogradPoints * NT * C;
    float* xs = dM + kWinogradPoints * NT * O;
    std::fill(dU, dU + nu + O, 0.0f);
    const Share sh = share(rows_total, th, threads);
    for (int64_t q0 = sh.q0; q0 < sh.q1; q0 += R) {
      const int64_t nr = std::min(R, sh.q1 - q0), n = nr * g.TX;
      input_group(x, g, q0, nr, C, NT * C, V, xs);
      for (int64_t q = q0; q < q0 + nr; ++q) {
        const int64_t vb = q / g.TY, ty = q % g.TY;
        for (int64_t ob = 0; ob < OB; ++ob) {
          // The tile row's dy strip (4, Wy, kL): each image's row at columns ix (W + 1) + w, zero
          // on the shared borders and past the canvas.
          vfloat sum = vzero();
          for (int u = 0; u < 4; ++u) {
            float* row = xs + u * Wy * kL;
            const CanvasRow cr = canvas_row(g, vb, 4 * ty + u);
            int64_t used = 0;
            if (cr.h >= 0)
              for (int64_t ix = 0; ix < g.px; ++ix) {
                const int64_t b = cr.iy * g.px + ix, w0 = ix * (W + 1), n = std::min(W + 1, Wy - w0);
                if (b >= B) break;
                row_to_blocked(dy + (b * O + ob * kL) * H * W, H, W, cr.h, 0, n, row + w0 * kL, &sum);
                used = w0 + n;
              }
            std::memset(row + used * kL, 0, (size_t)((Wy - used) * kL) * sizeof(float));
          }
          vstore(dbp + ob * kL, vadd(sum, vload(dbp + ob * kL)));
          dy_transform(xs, g, ob, (q - q0) * g.TX, NT, dM);
        }
      }
      for (int xi = 0; xi < kWinogradPoints; ++xi)  // dU[xi] (C, O) += V[xi]^T (C, n) dM[xi] (n, O)
        gemm_simd_block(true, false, C, O, n, 1.0f, V + xi * NT * C, C, dM + xi * NT * O, O, 1.0f, nullptr, false,
                          dU + xi * C * O, O);
    }
  }
  if (db)  // the threads' partial sums, in thread order
    for (int th = 0; th < threads; ++th)
      for (int64_t o = 0; o < O; ++o) db[o] += part[th][nu + o];
  // dw[o][c][tap] += sum_xi GG[xi][tap] sum_threads dU[xi][c][o] (threads in order)
  float coef[kWinogradPoints][9];
  for (int xi = 0; xi < kWinogradPoints; ++xi)
    for (int tap = 0; tap < 9; ++tap) coef[xi][tap] = gg(xi, tap);
  Tensor scratch = Tensor::empty({(int64_t)omp_get_max_threads() * (kWinogradPoints + 9) * O});
  parallel_for(C, std::max<int64_t>(1, 256 / O), [&](int64_t c0, int64_t c1) {  // grain: as winograd_weights
    float* sum = scratch.data() + omp_get_thread_num() * (kWinogradPoints + 9) * O;
    float* acc = sum + kWinogradPoints * O;
    for (int64_t c = c0; c < c1; ++c) {
      for (int xi = 0; xi < kWinogradPoints; ++xi) {
        float* s = sum + xi * O;
        std::memcpy(s, part[0] + (xi * C + c) * O, (size_t)O * sizeof(float));
        for (int th = 1; th < threads; ++th) {
          const float* p = part[th] + (xi * C + c) * O;
          for (int64_t o = 0; o < O; ++o) s[o] += p[o];
        }
      }
      std::fill(acc, acc + 9 * O, 0.0f);
      for (int tap = 0; tap < 9; ++tap)
        for (int xi = 0; xi < kWinogradPoints; ++xi) {
          const float k = coef[xi][tap];
          if (k == 0.0f) continue;
          const float* s = sum + xi * O;
          float* a = acc + tap * O;
          for (int64_t o = 0; o < O; ++o) a[o] += k * s[o];
        }
      for (int64_t o = 0; o < O; ++o)
        for (int tap = 0; tap < 9; ++tap) dw[(o * C + c) * 9 + tap] += acc[tap * O + o];
    }
  });
}

#else  // no AVX-512 or AVX2: conv2d keeps the direct kernel

bool conv3x3_winograd_available() { return false; }
int conv3x3_winograd_channels() { return 16; }

void conv3x3_winograd_cpu(const float*, int64_t, int64_t, int64_t, int64_t, const float*, int64_t, const float*,
                          float*, bool, const float*, Addend) {
  GT_FAIL("conv3x3_winograd_cpu: this build has neither AVX-512 nor AVX2 + FMA (check "
          "conv3x3_winograd_available() first)");
}

WinogradTiling conv3x3_winograd_tiling(int64_t, int64_t, int64_t) {
  GT_FAIL("conv3x3_winograd_tiling: this build has neither AVX-512 nor AVX2 + FMA (check "
          "conv3x3_winograd_available() first)");
}

void conv3x3_winograd_weight_grad_cpu(const float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, float*,
                                      float*) {
  GT_FAIL("conv3x3_winograd_weight_grad_cpu: this build has neither AVX-512 nor AVX2 + FMA (check "
          "conv3x3_winograd_available() first)");
}

#endif

}  // namespace gt
