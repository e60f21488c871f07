# Train every network from a synthetic training cohort (seeds disjoint from demo and test cohorts).
# Target `train`; models land in <train.out>/models: review their cards, then
# copy them to resources/models to ship them.  Config block `train` (n_exams, seed, minutes,
# threads, out; defaults in the schema).  The default of 240 exams: the segmentation model
# generalised to unseen exams only from about that many (with 80 it under-segmented unseen
# myocardium; docs/models.md).
TRAIN = config["train"]
TRAIN_OUT = Path(TRAIN["out"])
TRAIN_CARDS = {
    "seg_sax": ["seg_sax"],
    "lm_heatmap_lax": ["lm_heatmap_lax"],
    "lm_heatmap_sax": ["lm_heatmap_sax"],
    "lm_vgg": ["lm_vgg_lax_2ch", "lm_vgg_lax_4ch", "lm_vgg_sax"],
}


rule train_data:
    conda:
        CONDA_ENV
    output:
        TRAIN_OUT / "data/data.json",
    log:
        TRAIN_OUT / "logs/data.log",
    params:
        n=TRAIN["n_exams"],
        seed=TRAIN["seed"],
        data=lambda wildcards, output: str(Path(output[0]).parent),
    shell:
        "cmr-atlas train data --n-exams {params.n} --seed {params.seed} "
        "--out {params.data} > {log} 2>&1"


rule train_model:
    conda:
        CONDA_ENV
    input:
        TRAIN_OUT / "data/data.json",
    output:
        TRAIN_OUT / "models/{model}.json",
    wildcard_constraints:
        model="seg_sax|lm_heatmap_lax|lm_heatmap_sax",
    log:
        TRAIN_OUT / "logs/{model}.log",
    threads: TRAIN["threads"]
    params:
        minutes=TRAIN["minutes"],
        data=lambda wildcards, input: str(Path(input[0]).parent),
        models=lambda wildcards, output: str(Path(output[0]).parent),
    shell:
        "cmr-atlas train model {wildcards.model} --data {params.data} --out {params.models} "
        "--minutes {params.minutes} --threads {threads} > {log} 2>&1"


# The three VGG regressors train together: cyclic transfer learning passes weights between views.
rule train_vgg:
    conda:
        CONDA_ENV
    input:
        TRAIN_OUT / "data/data.json",
    output:
        [TRAIN_OUT / f"models/{n}.json" for n in TRAIN_CARDS["lm_vgg"]],
    log:
        TRAIN_OUT / "logs/lm_vgg.log",
    threads: TRAIN["threads"]
    params:
        minutes=TRAIN["minutes"],
        data=lambda wildcards, input: str(Path(input[0]).parent),
        models=lambda wildcards, output: str(Path(output[0]).parent),
    shell:
        "cmr-atlas train model lm_vgg --data {params.data} --out {params.models} "
        "--minutes {params.minutes} --threads {threads} > {log} 2>&1"


rule train:
    conda:
        CONDA_ENV
    input:
        [TRAIN_OUT / f"models/{n}.json" for names in TRAIN_CARDS.values() for n in names],
