# Placeholder first stage until ingest lands: list each shard's exam folders and file counts.
rule inventory_shard:
    input:
        folders=RESULTS / "shards/{shard}/folders.txt",
    output:
        RESULTS / "shards/{shard}/inventory.parquet",
    log:
        RESULTS / "logs/inventory/{shard}.log",
    params:
        cohort=str(COHORT),
    script:
        "../scripts/inventory.py"


rule inventory:
    input:
        per_shard(RESULTS / "shards/{shard}/inventory.parquet"),
    output:
        RESULTS / "inventory.parquet",
    log:
        RESULTS / "logs/inventory.log",
    run:
        import pandas as pd
        frames = [pd.read_parquet(p) for p in input]
        pd.concat(frames, ignore_index=True).to_parquet(output[0])
