# Fit the rating model of a prism-stats spec in R, for benchmarks/peers.py (which writes
# the inputs, derives the formula from the spec and reads the outputs back).
#
#   Rscript benchmarks/peers.R CONFIG.json lme4|rstanarm
#
# CONFIG.json (written by peers.py): csv (the ratings, one row per rating, labels made
# R-safe), grid (the "average rater" grid: participant-level attribute combinations with
# their share of the ratings, crossed with the conversation types at equal weights),
# formula, fixed_terms, random_terms (term, scale name, whether it is a rater term),
# llm_levels, sampler settings (chains, iter, warmup, adapt_delta, seed, cores) and out
# (prefix of the outputs).
#
# Outputs: <out>.csv, the draws (one row per chain x draw; lme4: one row) of the 21 LLM
# means for an average rater and of the scales; <out>.json, the timings, settings and
# diagnostics. The LLM mean of LLM m is the model's prediction for a new rater (rater
# terms at zero), opening turn, averaged over the grid with LLM set to m. It is linear in
# the coefficients, so it is computed draw by draw as draws %*% W, W a coefficient x LLM
# weight matrix: the same definition the package's posterior is averaged with.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2 || !(args[2] %in% c("lme4", "rstanarm"))) {
  stop("usage: Rscript peers.R CONFIG.json lme4|rstanarm", call. = FALSE)
}
cfg <- jsonlite::fromJSON(args[1], simplifyVector = TRUE)
fitter <- args[2]
t_start <- proc.time()[["elapsed"]]
suppressPackageStartupMessages({
  library(lme4)
  if (fitter == "rstanarm") library(rstanarm)
})
t_loaded <- proc.time()[["elapsed"]]
# Sum-to-zero contrasts: the fixed-effect coefficients are deviations from the average
# level (they do not change the predictions the comparison uses).
options(contrasts = c("contr.sum", "contr.poly"))

frame <- read.csv(cfg$csv, stringsAsFactors = TRUE, check.names = FALSE)
grid <- read.csv(cfg$grid, stringsAsFactors = FALSE, check.names = FALSE)
factor_cols <- setdiff(names(grid), c("weight", "later"))
for (col in factor_cols) {
  if (!col %in% names(frame)) stop(sprintf("grid column %s is not in %s", col, cfg$csv))
  grid[[col]] <- factor(grid[[col]], levels = levels(frame[[col]]))
  if (anyNA(grid[[col]])) stop(sprintf("grid column %s has levels absent from the ratings", col))
}
llms <- cfg$llm_levels
frame$llm <- factor(as.character(frame$llm), levels = llms)
form <- as.formula(cfg$formula)

warnings_seen <- character(0)
keep_warning <- function(w) {
  warnings_seen <<- c(warnings_seen, conditionMessage(w))
  invokeRestart("muffleWarning")
}
cpu <- function(t) t[["user.self"]] + t[["sys.self"]] + t[["user.child"]] + t[["sys.child"]]
t0 <- proc.time()
if (fitter == "lme4") {
  fit <- withCallingHandlers(lmer(form, data = frame, REML = TRUE), warning = keep_warning)
} else {
  # sample_file: rstan writes each post-warm-up iteration as it goes (rstanarm does not
  # save the warm-up), so a fit killed at the time limit still shows how far each chain got
  fit <- withCallingHandlers(
    stan_glmer(form, data = frame, family = gaussian(), chains = cfg$chains,
               iter = cfg$iter, warmup = cfg$warmup, adapt_delta = cfg$adapt_delta,
               seed = cfg$seed, cores = cfg$cores, refresh = 0,
               sample_file = paste0(cfg$out, "_iterations.csv")),
    warning = keep_warning)
}
t1 <- proc.time()
fit_s <- t1[["elapsed"]] - t0[["elapsed"]]
# CPU seconds of this process and of the chains' worker processes (rstan waits for them):
# less sensitive to other jobs on a shared machine than the wall time
fit_cpu_s <- cpu(t1) - cpu(t0)

# --- coefficient draws, named as rstanarm names them ------------------------------------
random <- cfg$random_terms  # data frame: term, scale, rater
if (fitter == "lme4") {
  re <- ranef(fit)
  b <- unlist(lapply(names(re), function(g) {
    v <- re[[g]][["(Intercept)"]]
    names(v) <- sprintf("b[(Intercept) %s:%s]", g, rownames(re[[g]]))
    v
  }))
  coef_draws <- matrix(c(fixef(fit), b), nrow = 1, dimnames = list(NULL, c(names(fixef(fit)), names(b))))
  chain_of <- 1L
  vc <- as.data.frame(VarCorr(fit))
  scale_of <- function(term) vc$sdcor[vc$grp == term & is.na(vc$var2)]
  sigma_draws <- sigma(fit)
} else {
  arr <- as.array(fit)  # iterations x chains x parameters
  n_iter <- dim(arr)[1]
  n_chain <- dim(arr)[2]
  coef_draws <- do.call(rbind, lapply(seq_len(n_chain), function(ch) arr[, ch, ]))
  chain_of <- rep(seq_len(n_chain), each = n_iter)
  scale_of <- function(term) sqrt(coef_draws[, sprintf("Sigma[%s:(Intercept),(Intercept)]", term)])
  sigma_draws <- coef_draws[, "sigma"]
}
coef_names <- colnames(coef_draws)

# --- the weight matrix W (coefficients x LLMs) of the average-rater LLM means -----------
fixed_rhs <- if (length(cfg$fixed_terms)) paste(cfg$fixed_terms, collapse = " + ") else "1"
fixed_form <- as.formula(paste("~", fixed_rhs))
W <- matrix(0, nrow = length(coef_names), ncol = length(llms), dimnames = list(coef_names, llms))
missing_fixed <- character(0)
unseen <- list()
for (j in seq_along(llms)) {
  g <- grid
  g$llm <- factor(rep(llms[j], nrow(g)), levels = llms)
  X <- model.matrix(fixed_form, g)
  xbar <- colSums(X * g$weight)
  found <- intersect(names(xbar), coef_names)
  missing_fixed <- union(missing_fixed, setdiff(names(xbar)[xbar != 0], coef_names))
  W[found, j] <- W[found, j] + xbar[found]
  for (k in seq_len(nrow(random))) {
    if (random$rater[k]) next  # a new rater: participant terms at zero
    term <- random$term[k]
    vars <- strsplit(term, ":", fixed = TRUE)[[1]]
    level <- do.call(paste, c(lapply(vars, function(v) as.character(g[[v]])), sep = ":"))
    w <- tapply(g$weight, level, sum)
    name <- sprintf("b[(Intercept) %s:%s]", term, names(w))
    hit <- name %in% coef_names
    # combinations never rated have no coefficient: their effect is the prior mean, 0
    unseen[[term]] <- c(unseen[[term]], sum(w[!hit]))
    W[name[hit], j] <- W[name[hit], j] + w[hit]
  }
}
if (length(missing_fixed)) {
  stop("fixed-effect columns without a coefficient (rank-deficient design?): ",
       paste(missing_fixed, collapse = ", "))
}
means <- coef_draws %*% W

draws <- data.frame(chain = chain_of - 1L, draw = ave(chain_of, chain_of, FUN = seq_along) - 1L,
                    check.names = FALSE)
for (j in seq_along(llms)) draws[[paste0("llm_mean[", llms[j], "]")]] <- means[, j]
draws[["sigma"]] <- sigma_draws
for (k in seq_len(nrow(random))) draws[[random$scale[k]]] <- scale_of(random$term[k])
write.csv(draws, paste0(cfg$out, ".csv"), row.names = FALSE)

# --- timings, settings, diagnostics ------------------------------------------------------
info <- list(
  fitter = fitter, fit_s = fit_s, fit_cpu_s = fit_cpu_s, load_packages_s = t_loaded - t_start,
  total_s = proc.time()[["elapsed"]] - t_start, formula = cfg$formula,
  n_ratings = nrow(frame), warnings = unique(warnings_seen),
  unseen_weight = lapply(unseen, max),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
if (fitter == "lme4") {
  info$singular <- isSingular(fit)
  info$messages <- fit@optinfo$conv$lme4$messages
  info$settings <- list(REML = TRUE, optimizer = fit@optinfo$optimizer)
} else {
  sf <- fit$stanfit
  info$versions$rstanarm <- as.character(packageVersion("rstanarm"))
  info$versions$rstan <- as.character(packageVersion("rstan"))
  info$settings <- list(chains = cfg$chains, iter = cfg$iter, warmup = cfg$warmup,
                        adapt_delta = cfg$adapt_delta, seed = cfg$seed, cores = cfg$cores,
                        algorithm = "sampling (NUTS, diag_e)",
                        priors = "rstanarm defaults (autoscaled normal coefficients, exponential sigma, decov covariance)")
  sp <- rstan::get_sampler_params(sf, inc_warmup = FALSE)
  info$divergences <- sum(sapply(sp, function(x) sum(x[, "divergent__"])))
  info$steps_per_draw <- mean(sapply(sp, function(x) mean(x[, "n_leapfrog__"])))
  el <- rstan::get_elapsed_time(sf)
  # per chain, as rstan reports them (Stan 2.21 times a chain with clock(): CPU seconds)
  info$warmup_s <- as.numeric(el[, "warmup"])
  info$sampling_s <- as.numeric(el[, "sample"])
  s <- rstan::summary(sf)$summary
  info$max_rhat_all <- max(s[, "Rhat"], na.rm = TRUE)
  info$min_neff_all <- min(s[, "n_eff"], na.rm = TRUE)
  info$n_parameters <- nrow(s)
}
writeLines(jsonlite::toJSON(info, auto_unbox = TRUE, digits = NA, null = "null"),
           paste0(cfg$out, ".json"))
cat(sprintf("%s done: fit %.1f s\n", fitter, fit_s))
