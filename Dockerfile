FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY workers ./workers
COPY templates ./templates
RUN pip install --no-cache-dir . && useradd --create-home papermail
USER papermail
CMD ["papermail", "--help"]
