FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY workers ./workers
COPY templates ./templates
# The journal directory exists, owned by papermail, before a volume is mounted on it (Docker copies its owner).
RUN pip install --no-cache-dir . && useradd --create-home papermail \
    && install -d -o papermail -g papermail /var/lib/papermail/journal
USER papermail
CMD ["papermail", "--help"]
