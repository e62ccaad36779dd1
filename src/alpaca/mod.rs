//! Alpaca: HTTP client, market data, trading (the `Broker` implementation). (Being written.)
