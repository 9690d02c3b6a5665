#!/usr/bin/env bash
# Install a Nextflow runtime for cfrna without the internet-only launcher.
#
# - If `nextflow` is already on PATH (and NXF_FORCE_MAVEN is not set), that one is used: the
#   script only prints its version.
# - Otherwise it assembles Nextflow ${NXF_VER} from Maven Central (io.nextflow:nextflow and its
#   dependencies) with Maven into tools/nextflow/lib and writes the wrapper
#   tools/nextflow/bin/nextflow (java + --add-opens + nextflow.cli.Launcher).
#
# Air-gapped sites: run this once on a connected machine, then copy tools/nextflow/ (and, to
# rebuild there, ~/.m2/repository) to the cluster; the wrapper needs only Java 17+.
#
# Maven Central has io.nextflow:nextflow and nf-commons up to 24.10.5/6 but nf-httpfs only as
# 24.10.0, so nf-httpfs is pinned to NXF_HTTPFS_VER (default 24.10.0; unchanged API in 24.10.x).
#
# Env: NXF_VER (default 24.10.5), NXF_HTTPFS_VER (default 24.10.0), NXF_INSTALL_DIR (default <repo>/tools/nextflow),
#      NXF_FORCE_MAVEN=1 (ignore a nextflow on PATH), MAVEN_REPO_URL (a mirror of Maven Central).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NXF_VER=${NXF_VER:-24.10.5}
NXF_HTTPFS_VER=${NXF_HTTPFS_VER:-24.10.0}
DEST=${NXF_INSTALL_DIR:-$ROOT/tools/nextflow}

die() { echo "install_nextflow.sh: error: $*" >&2; exit 1; }

if [[ -z ${NXF_FORCE_MAVEN:-} ]] && command -v nextflow >/dev/null 2>&1 \
   && [[ $(command -v nextflow) != "$DEST/bin/nextflow" ]]; then
  echo "using nextflow on PATH: $(command -v nextflow)"
  nextflow -version 2>/dev/null | grep -i version || true
  exit 0
fi

command -v java >/dev/null || die "java not found; install a JDK 17+ (Debian: apt-get install openjdk-17-jre-headless)"
JAVA_MAJOR=$(java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1)
[[ ${JAVA_MAJOR:-0} -ge 17 ]] || die "java ${JAVA_MAJOR:-?} found; Nextflow ${NXF_VER} needs Java 17+"

if [[ -x $DEST/bin/nextflow && -f $DEST/lib/.complete-$NXF_VER ]]; then
  echo "Nextflow ${NXF_VER} already installed in $DEST"
  exit 0
fi

command -v mvn >/dev/null || die "mvn not found; install Maven (Debian: apt-get install maven)"

mkdir -p "$DEST/bin" "$DEST/lib" "$DEST/home"
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
REPO_BLOCK=""
if [[ -n ${MAVEN_REPO_URL:-} ]]; then
  REPO_BLOCK="<repositories><repository><id>mirror</id><url>${MAVEN_REPO_URL}</url></repository></repositories>"
fi
cat > "$BUILD/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>cfrna</groupId>
  <artifactId>nextflow-runtime</artifactId>
  <version>${NXF_VER}</version>
  <packaging>pom</packaging>
  ${REPO_BLOCK}
  <dependencyManagement><dependencies>
    <dependency><groupId>io.nextflow</groupId><artifactId>nf-httpfs</artifactId><version>${NXF_HTTPFS_VER}</version></dependency>
  </dependencies></dependencyManagement>
  <dependencies>
    <dependency><groupId>io.nextflow</groupId><artifactId>nextflow</artifactId><version>${NXF_VER}</version></dependency>
  </dependencies>
</project>
POM

echo "assembling Nextflow ${NXF_VER} from Maven into $DEST/lib"
rm -rf "$DEST/lib.new"
mvn -B -q -f "$BUILD/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$DEST/lib.new" \
  || die "maven could not resolve io.nextflow:nextflow:${NXF_VER} (network or mirror: set MAVEN_REPO_URL)"
ls "$DEST/lib.new"/nextflow-"${NXF_VER}".jar >/dev/null 2>&1 || die "nextflow-${NXF_VER}.jar missing after maven"
rm -rf "$DEST/lib"
mv "$DEST/lib.new" "$DEST/lib"

cat > "$DEST/bin/nextflow.tmp" <<'WRAP'
#!/usr/bin/env bash
# Nextflow launcher assembled by cfrna's scripts/install_nextflow.sh (offline: no self-update).
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export NXF_OFFLINE=${NXF_OFFLINE:-true}
export NXF_HOME=${NXF_HOME:-$HERE/home}
export NXF_VER=__NXF_VER__
export NXF_CLI="$0 $*"
JAVA=${JAVA_CMD:-java}
[[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]] && JAVA=$JAVA_HOME/bin/java
OPENS=(--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED --add-opens=java.base/java.util.regex=ALL-UNNAMED
  --add-opens=java.base/java.nio.file.spi=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/sun.nio.fs=ALL-UNNAMED --add-opens=java.base/sun.net.www.protocol.http=ALL-UNNAMED
  --add-opens=java.base/sun.net.www.protocol.https=ALL-UNNAMED --add-opens=java.base/sun.net.www.protocol.ftp=ALL-UNNAMED
  --add-opens=java.base/sun.net.www.protocol.file=ALL-UNNAMED --add-opens=java.base/jdk.internal.vm=ALL-UNNAMED)
# shellcheck disable=SC2086
exec "$JAVA" -XX:+TieredCompilation -XX:TieredStopAtLevel=1 -Xshare:auto ${NXF_OPTS:-} "${OPENS[@]}" \
  -Dcapsule.trampoline=false -cp "$HERE/lib/*" nextflow.cli.Launcher "$@"
WRAP
sed -i "s/__NXF_VER__/${NXF_VER}/" "$DEST/bin/nextflow.tmp"
chmod 755 "$DEST/bin/nextflow.tmp"
mv "$DEST/bin/nextflow.tmp" "$DEST/bin/nextflow"
touch "$DEST/lib/.complete-$NXF_VER"
echo "installed: $DEST/bin/nextflow"
"$DEST/bin/nextflow" -version | grep -iE 'version|nextflow' | head -3 || die "the assembled runtime does not start"
