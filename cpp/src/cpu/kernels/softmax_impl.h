// softmax_impl.h — the one source of the softmax microkernels (contract in softmax_ukernel.h);
// pasted into each softmax__<isa>.cpp's anonymous namespace after that file's float exp_run
// (no includes here): plain loops over p or c that the file's ISA flags vectorize, the
// exponentials inlined.

// double's exponentials: std::exp (double is the accuracy path, not the fast one).
// y[i] = e^{x[i] − a[i·step]}; y may be x.
inline void exp_run(int64_t n, double* y, const double* x, const double* a, int64_t step) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i] - a[i * step]);
}

// x (C, P) rows ldx apart -> z (C, P) contiguous; mx (P) = the column maxima.
template <class T>
void gather_max(int64_t C, int64_t P, const T* __restrict x, int64_t ldx, T* __restrict z,
                T* __restrict mx) {
  if (!mx) {  // a loop, not memcpy: a call per 256-byte row cost more than the copy
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < P; ++p) z[c * P + p] = x[c * ldx + p];
    return;
  }
  for (int64_t p = 0; p < P; ++p) mx[p] = -std::numeric_limits<T>::infinity();
  for (int64_t c = 0; c < C; ++c) {
    const T* __restrict xc = x + c * ldx;
    T* __restrict zc = z + c * P;
    for (int64_t p = 0; p < P; ++p) {
      zc[p] = xc[p];
      mx[p] = std::max(mx[p], xc[p]);
    }
  }
}

// x (C, P) rows ldx apart, a (P) -> sum (P); e (C, P) contiguous <- e^{x − a} if non-null
// (e may be x, with ldx = P).
template <class T>
void exp_sum(int64_t C, int64_t P, const T* x, int64_t ldx, const T* a, double* __restrict sum,
             T* e) {
  T tmp[kSoftmaxTile];
  for (int64_t p = 0; p < P; ++p) sum[p] = 0;
  for (int64_t c = 0; c < C; ++c) {
    T* ec = e ? e + c * P : tmp;
    exp_run(P, ec, x + c * ldx, a, 1);
    for (int64_t p = 0; p < P; ++p) sum[p] += double(ec[p]);
  }
}

// z (C, P), s, t (P), w (C) -> y (C, P) rows ldy apart.
template <class T>
void affine_out(int64_t C, int64_t P, T* __restrict y, int64_t ldy, const T* __restrict z,
                const T* __restrict s, const T* __restrict t, const T* __restrict w) {
  for (int64_t c = 0; c < C; ++c) {
    T* __restrict yc = y + c * ldy;
    const T* __restrict zc = z + c * P;
    if (!t) {
      for (int64_t p = 0; p < P; ++p) yc[p] = zc[p] * s[p];
      continue;
    }
    const T wc = w ? w[c] : T(1);
    for (int64_t p = 0; p < P; ++p) yc[p] = zc[p] * s[p] - t[p] * wc;
  }
}

// z (C, P), a, b (P) -> y (C, P) rows ldy apart.
template <class T>
void shift_out(int64_t C, int64_t P, T* __restrict y, int64_t ldy, const T* __restrict z,
               const T* __restrict a, const T* __restrict b) {
  for (int64_t c = 0; c < C; ++c) {
    T* __restrict yc = y + c * ldy;
    const T* __restrict zc = z + c * P;
    for (int64_t p = 0; p < P; ++p) yc[p] = (zc[p] - a[p]) - b[p];
  }
}

// g, y (C, P) -> dx (C, P) rows ldx apart: softmax y·(g − Σ_c g·y), log-softmax
// g − e^y·Σ_c g; the sums and the results in double.
template <class T>
void grad_out(int64_t C, int64_t P, T* __restrict dx, int64_t ldx, const T* __restrict g,
              const T* __restrict y, bool log) {
  double dot[kSoftmaxTile];
  for (int64_t p = 0; p < P; ++p) dot[p] = 0;
  for (int64_t c = 0; c < C; ++c) {
    if (log)
      for (int64_t p = 0; p < P; ++p) dot[p] += double(g[c * P + p]);
    else
      for (int64_t p = 0; p < P; ++p) dot[p] += double(g[c * P + p]) * double(y[c * P + p]);
  }
  const T zero = 0;
  T e[kSoftmaxTile];
  for (int64_t c = 0; c < C; ++c) {
    T* __restrict dxc = dx + c * ldx;
    const T* __restrict gc = g + c * P;
    const T* __restrict yc = y + c * P;
    if (!log) {
      for (int64_t p = 0; p < P; ++p) dxc[p] = T(yc[p] * (gc[p] - dot[p]));
      continue;
    }
    exp_run(P, e, yc, &zero, 0);
    for (int64_t p = 0; p < P; ++p) dxc[p] = T(gc[p] - double(e[p]) * dot[p]);
  }
}

// ln s for s = Σ e^{z − max z}: in [1, C] or NaN. float's: s = 2^k·m, m in [√½, √2),
// ln m = 2·atanh(u) = 2u·(1 + u²/3 + u⁴/5 + ...), u = (m − 1)/(m + 1), |u| < 0.172, to the u¹²
// term (truncation under 2e-12 relative: exact once rounded to float), branch-free so the loop
// vectorizes; double's: std::log.
inline double log_of_sum(double s) {
  uint64_t b;
  std::memcpy(&b, &s, sizeof b);
  uint64_t mb = (b & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;  // m in [1, 2)
  const uint64_t big = mb > 0x3ff6a09e667f3bcdULL ? 1 : 0;              // m > √2: m/2, k + 1
  mb -= big << 52;
  const uint64_t kb = 0x4330000000000000ULL | ((b >> 52) + big);  // 2^52 + biased k, as a double
  double m, k;
  std::memcpy(&m, &mb, sizeof m);
  std::memcpy(&k, &kb, sizeof k);
  k = (k - 4503599627370496.0) - 1023.0;
  const double u = (m - 1.0) / (m + 1.0), u2 = u * u;
  double p = 1.0 / 13;
  for (int j = 11; j >= 3; j -= 2) p = p * u2 + 1.0 / j;
  // + (s − s): 0, or NaN for a NaN s (its bits would give a finite value)
  return k * 0.69314718055994531 + (2.0 * u + 2.0 * u * u2 * p) + (s - s);
}

template <class T>
void log_sums(int64_t n, double* __restrict ls, const double* __restrict sum) {
  if constexpr (sizeof(T) == sizeof(double)) {
    for (int64_t i = 0; i < n; ++i) ls[i] = std::log(sum[i]);
    return;
  }
  for (int64_t i = 0; i < n; ++i) ls[i] = log_of_sum(sum[i]);
}

// Independent chains (maxima, double sums) along a row; `omp simd` on their loops (GCC's SLP pass
// leaves the 16 unrolled chains scalar).
constexpr int kRowLanes = 16;

// The lanes' sum, pairwise: no one long chain at the end.
inline double lane_total(double (&s)[kRowLanes]) {
  for (int w = kRowLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) s[l] += s[l + w];
  return s[0];
}

template <class T>
T row_max(int64_t C, const T* __restrict x) {
  T m[kRowLanes];
  for (T& l : m) l = -std::numeric_limits<T>::infinity();
  int64_t i = 0;
  for (; i + kRowLanes <= C; i += kRowLanes)
#pragma omp simd
    for (int l = 0; l < kRowLanes; ++l) m[l] = std::max(m[l], x[i + l]);
  for (; i < C; ++i) m[0] = std::max(m[0], x[i]);
  for (int l = 1; l < kRowLanes; ++l) m[0] = std::max(m[0], m[l]);
  return m[0];
}

// x (C) -> Σ e^{x − a} (every exponential added in double); e (C) <- them if non-null.
template <class T>
double row_exp_sum(int64_t C, const T* __restrict x, T a, T* __restrict e) {
  constexpr int64_t kChunk = 256;
  T chunk[kChunk];
  double s[kRowLanes] = {};
  for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
    const int64_t m = std::min(kChunk, C - c0);
    T* ec = e ? e + c0 : chunk;
    exp_run(m, ec, x + c0, &a, 0);
    int64_t i = 0;
    for (; i + kRowLanes <= m; i += kRowLanes)
#pragma omp simd
      for (int l = 0; l < kRowLanes; ++l) s[l] += double(ec[i + l]);
    for (; i < m; ++i) s[0] += double(ec[i]);
  }
  return lane_total(s);
}

template <class T>
void row_affine(int64_t C, T* __restrict y, T s, T t, const T* __restrict w) {
  if (t == T(0)) {
    for (int64_t c = 0; c < C; ++c) y[c] *= s;
    return;
  }
  if (!w) {
    for (int64_t c = 0; c < C; ++c) y[c] = y[c] * s - t;
    return;
  }
  for (int64_t c = 0; c < C; ++c) y[c] = y[c] * s - t * w[c];
}

template <class T>
void row_shift(int64_t C, T* __restrict y, const T* __restrict x, T a, T b) {
  for (int64_t c = 0; c < C; ++c) y[c] = (x[c] - a) - b;
}

// One row of grad_out (dx, g, y: C contiguous values).
template <class T>
void row_grad(int64_t C, T* __restrict dx, const T* __restrict g, const T* __restrict y,
              bool log) {
  double s[kRowLanes] = {};
  int64_t i = 0;
  if (log) {
    for (; i + kRowLanes <= C; i += kRowLanes)
#pragma omp simd
      for (int l = 0; l < kRowLanes; ++l) s[l] += double(g[i + l]);
  } else {
    for (; i + kRowLanes <= C; i += kRowLanes)
#pragma omp simd
      for (int l = 0; l < kRowLanes; ++l) s[l] += double(g[i + l]) * double(y[i + l]);
  }
  for (; i < C; ++i) s[0] += log ? double(g[i]) : double(g[i]) * double(y[i]);
  const double dot = lane_total(s);
  if (!log) {
    for (int64_t c = 0; c < C; ++c) dx[c] = T(y[c] * (g[c] - dot));
    return;
  }
  const T zero = 0;
  exp_run(C, dx, y, &zero, 0);
  for (int64_t c = 0; c < C; ++c) dx[c] = T(g[c] - double(dx[c]) * dot);
}

template <class T>
constexpr SoftmaxKernel<T> softmax_table(const char* name) {
  return {name,         &gather_max<T>,  &exp_sum<T>,    &log_sums<T>,   &affine_out<T>,
          &shift_out<T>, &grad_out<T>,    &row_max<T>,    &row_exp_sum<T>, &row_affine<T>,
          &row_shift<T>, &row_grad<T>};
}
