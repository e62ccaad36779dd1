//! The universe: iShares IWV holdings parsing, loading, caching and fallback. (Being written.)
